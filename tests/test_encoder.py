import math
import warnings

import numpy as np
import pytest
import torch

from sentsim import DenseConfig, SentenceEncoder, similarity

TEXTS = [
    "The cat sat on the mat.",
    "A dog",
    "Stocks fell sharply on Monday morning while the committee approved the new budget.",
    "Rain",
    "",
    "She reads a book by the window.",
]


def test_shape_and_dtype(tiny_encoder):
    embeddings = tiny_encoder.encode(TEXTS)
    assert embeddings.shape == (len(TEXTS), tiny_encoder.dim)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()


def test_single_string_gives_a_vector(tiny_encoder):
    vector = tiny_encoder.encode("The cat sat on the mat.")
    assert vector.shape == (tiny_encoder.dim,)
    np.testing.assert_allclose(vector, tiny_encoder.encode(TEXTS)[0], atol=1e-5)


def test_empty_list_gives_empty_matrix(tiny_encoder):
    assert tiny_encoder.encode([]).shape == (0, tiny_encoder.dim)


def test_batched_equals_one_by_one_in_input_order(tiny_encoder):
    batched = tiny_encoder.encode(TEXTS, batch_size=4)
    alone = np.stack([tiny_encoder.encode([text])[0] for text in TEXTS])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, batch_size=1), batched, atol=1e-5)


def test_encode_equals_forward_on_a_padded_batch(tiny_encoder):
    features = tiny_encoder.tokenize(TEXTS)
    with torch.no_grad():
        expected = tiny_encoder(**features).numpy()
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS), expected, atol=1e-5)


def test_forward_has_gradients(tiny_encoder):
    tiny_encoder.train()
    embeddings = tiny_encoder(**tiny_encoder.tokenize(TEXTS[:2]))
    embeddings.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny_encoder.parameters())


def test_as_tensor(tiny_encoder):
    tensor = tiny_encoder.encode(TEXTS, as_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), tiny_encoder.encode(TEXTS), atol=1e-6)


def test_normalize_option_and_model_default(tiny_encoder):
    raw = tiny_encoder.encode(TEXTS)
    unit = tiny_encoder.encode(TEXTS, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)
    tiny_encoder.normalize = True
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS), unit, atol=1e-6)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS, normalize=False), raw, atol=1e-6)


@pytest.mark.parametrize(
    "bad, index, kind",
    [
        (["ok", 3, "ok"], 1, "int"),
        (["ok", "ok", None], 2, "NoneType"),
        ([float("nan")], 0, "NaN"),
        (["a", b"b"], 1, "bytes"),
    ],
)
def test_non_string_items_name_their_index(tiny_encoder, bad, index, kind):
    with pytest.raises(TypeError, match=rf"texts\[{index}\] is {kind}"):
        tiny_encoder.encode(bad)


def test_a_huge_bad_item_is_quoted_short(tiny_encoder):
    """The message quotes the bad item cut short: a 5 MB bytes object made a 5 MB error."""
    for bad in (b"x" * 5_000_000, ["y"] * 1_000_000):
        with pytest.raises(
            TypeError, match=r"texts\[1\] is (bytes|list) \(.{10,80}\.\.\..{0,80}\); expected str$"
        ) as error:
            tiny_encoder.encode(["ok", bad])
        assert len(str(error.value)) < 200


def test_non_list_input_is_refused(tiny_encoder):
    with pytest.raises(TypeError, match="must be a list of str"):
        tiny_encoder.encode(42)
    for unordered in ({"a": 1}, {"a", "b"}):  # dicts would encode their keys, sets in no set order
        with pytest.raises(TypeError, match=f"got {type(unordered).__name__}"):
            tiny_encoder.encode(unordered)
    with pytest.raises(ValueError, match=r"texts\[1\] is not valid Unicode text \(surrogates not allowed"):
        tiny_encoder.encode(["fine", "lone \ud800 surrogate"])


def test_numpy_array_of_strings_is_accepted(tiny_encoder):
    np.testing.assert_allclose(tiny_encoder.encode(np.array(TEXTS[:3])), tiny_encoder.encode(TEXTS[:3]), atol=1e-6)


def test_empty_string_is_a_valid_embedding(tiny_encoder):
    vector = tiny_encoder.encode("")
    assert vector.shape == (tiny_encoder.dim,) and np.isfinite(vector).all() and np.abs(vector).sum() > 0


def test_long_text_is_truncated_with_one_warning(tiny_encoder):
    long_text = " ".join(["the cat sat on the mat"] * 40)
    with pytest.warns(UserWarning, match=r"2 of 3 texts were longer than max_seq_length=32") as record:
        embeddings = tiny_encoder.encode([long_text, "a dog", long_text + " again"])
    assert len([w for w in record if "truncated" in str(w.message)]) == 1
    cut = tiny_encoder.tower.tokenizer.tokenizer.decode(tiny_encoder.tower.tokenizer.encode([long_text]).ids[0])
    np.testing.assert_allclose(embeddings[0], tiny_encoder.encode(cut), atol=1e-5)


def test_short_texts_do_not_warn(tiny_encoder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_encoder.encode(TEXTS)


def test_bad_batch_size(tiny_encoder):
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        tiny_encoder.encode(TEXTS, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int >= 1, got True"):
        tiny_encoder.encode(TEXTS, batch_size=True)


def test_flags_names_and_lengths_are_checked_at_the_boundary(tiny_encoder, tiny_transformer):
    with pytest.raises(TypeError, match="normalize must be True, False or None, got 'false'"):
        tiny_encoder.encode(TEXTS, normalize="false")  # a non-empty string would read as True
    with pytest.raises(TypeError, match="packed must be True, False or None, got 'no'"):
        tiny_encoder.encode(TEXTS, packed="no")
    with pytest.raises(TypeError, match="as_tensor must be True or False, got 1"):
        tiny_encoder.encode(TEXTS, as_tensor=1)
    np.testing.assert_array_equal(tiny_encoder.encode(np.array("a cat")), tiny_encoder.encode("a cat"))  # 0-d
    assert tiny_encoder.similarity(np.array("a cat"), np.array("a dog")) == tiny_encoder.similarity("a cat", "a dog")
    with pytest.raises(TypeError, match="pairwise must be True or False, got 'False'"):
        tiny_encoder.similarity(["a cat"], ["a dog"], pairwise="False")  # a non-empty str would read as True
    with pytest.raises(TypeError, match="tower must be a TransformerTower or LSTMTower, got str .*from_pretrained"):
        SentenceEncoder("all-MiniLM-L6-v2")
    for name in (None, 123, "", "  "):
        with pytest.raises(TypeError, match="name_or_path must be a model name or a folder path"):
            SentenceEncoder.from_pretrained(name)
    for value, error in ((True, TypeError), (128.0, TypeError), ("128", TypeError), (0, ValueError)):
        with pytest.raises(error, match="max_seq_length must be"):
            tiny_encoder.max_seq_length = value


def test_max_seq_length_zero_is_refused_when_loading(tiny_transformer, tmp_path):
    SentenceEncoder(tiny_transformer).save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="max_seq_length must be an int between 1 and"):
        SentenceEncoder.from_pretrained(tmp_path / "model", max_seq_length=0)  # was silently the default
    assert SentenceEncoder.from_pretrained(tmp_path / "model", max_seq_length=5).max_seq_length == 5


def test_unknown_pooling(tiny_transformer):
    with pytest.raises(ValueError, match="unknown pooling 'median'; expected one of 'mean', 'cls', 'max'"):
        SentenceEncoder(tiny_transformer, pooling="median")


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_pooling_modes_differ(tiny_transformer, pooling):
    encoder = SentenceEncoder(tiny_transformer, pooling=pooling)
    mean = SentenceEncoder(tiny_transformer).encode(TEXTS)
    assert np.allclose(encoder.encode(TEXTS), mean) == (pooling == "mean")


def test_dense_config_values_are_checked_and_stored_plain(tiny_transformer, tmp_path):
    config = DenseConfig(in_features=np.int64(32), out_features=np.int32(7), bias=np.True_)
    assert (type(config.in_features), type(config.out_features), config.bias) == (int, int, True)
    encoder = SentenceEncoder(tiny_transformer, dense=config)
    assert type(encoder.dim) is int
    encoder.save_pretrained(tmp_path / "model")  # JSON: numpy ints would not serialize
    assert SentenceEncoder.from_pretrained(tmp_path / "model").dim == 7
    with pytest.raises(ValueError, match="DenseConfig.out_features must be an int >= 1, got 0"):
        DenseConfig(in_features=32, out_features=0)
    with pytest.raises(TypeError, match="DenseConfig.in_features must be an int >= 1, got '32'"):
        DenseConfig(in_features="32", out_features=7)


def test_dense_projection(tiny_transformer):
    encoder = SentenceEncoder(tiny_transformer, dense=DenseConfig(in_features=32, out_features=7))
    embeddings = encoder.encode(TEXTS)
    assert encoder.dim == 7 and embeddings.shape == (len(TEXTS), 7)
    assert np.abs(embeddings).max() <= 1.0  # tanh
    with pytest.raises(ValueError, match="in_features is 16 but the tower outputs 32"):
        SentenceEncoder(tiny_transformer, dense=DenseConfig(in_features=16, out_features=7))


def test_max_seq_length_can_be_changed(tiny_encoder):
    tiny_encoder.max_seq_length = 4
    assert tiny_encoder.max_seq_length == 4
    with pytest.warns(UserWarning, match="max_seq_length=4"):
        tiny_encoder.encode(["the cat sat on the mat"])


def test_max_seq_length_must_leave_room_besides_the_special_tokens(tiny_encoder):
    """[CLS] [SEP] fill 2 tokens; at 2 or fewer the Rust tokenizer truncated nothing, and a long text
    failed deep in the model (a position-embedding size error). Refused when set instead."""
    with pytest.raises(ValueError, match="no room for text besides the tokenizer's 2 special tokens; use at least 3"):
        tiny_encoder.max_seq_length = 2
    tiny_encoder.max_seq_length = 3
    features = tiny_encoder.tokenize(["the cat sat on the mat " * 100])
    assert features["input_ids"].shape == (1, 3)


def test_similarity_on_texts_equals_similarity_of_embeddings(tiny_encoder):
    embeddings = tiny_encoder.encode(TEXTS)
    for metric in ("cosine", "dot", "euclidean", "manhattan"):
        expected = similarity(embeddings[:2], embeddings, metric)
        np.testing.assert_allclose(tiny_encoder.similarity(TEXTS[:2], TEXTS, metric), expected, atol=1e-5)
    pair = tiny_encoder.similarity(TEXTS[0], TEXTS[1])
    assert isinstance(pair, float) and math.isclose(pair, float(similarity(embeddings[0], embeddings[1])), abs_tol=1e-5)
    np.testing.assert_allclose(
        tiny_encoder.similarity(TEXTS[:3], embeddings[3:], pairwise=True),
        similarity(embeddings[:3], embeddings[3:], pairwise=True),
        atol=1e-5,
    )


def test_pairwise_lengths_must_match(tiny_encoder):
    with pytest.raises(ValueError, match="same length; got 2 and 3"):
        tiny_encoder.similarity(TEXTS[:2], TEXTS[:3], pairwise=True)


def test_similarity_names_bad_items(tiny_encoder):
    with pytest.raises(TypeError, match=r"b\[1\] is NoneType"):
        tiny_encoder.similarity(TEXTS[:2], ["ok", None])


def test_progress_bar_can_be_turned_on_and_off(tiny_encoder, capsys):
    tiny_encoder.encode(TEXTS, show_progress=True)
    assert "encode" in capsys.readouterr().err
    tiny_encoder.encode(TEXTS * 20, batch_size=2, show_progress=False)
    assert capsys.readouterr().err == ""


def test_training_mode_is_restored(tiny_encoder):
    tiny_encoder.train()
    tiny_encoder.encode(TEXTS)
    assert tiny_encoder.training
