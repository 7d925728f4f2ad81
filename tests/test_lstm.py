import json

import numpy as np
import pytest
import torch

from sentsim import LSTMConfig, LSTMTower, SentenceEncoder


def test_output_dimension(tokenizer):
    vocab = tokenizer.get_vocab_size()
    assert LSTMTower(LSTMConfig(vocab_size=vocab, hidden_size=10), tokenizer).dim == 20
    assert LSTMTower(LSTMConfig(vocab_size=vocab, hidden_size=10, bidirectional=False), tokenizer).dim == 10


def test_padding_does_not_change_token_embeddings(tiny_lstm):
    """Packed sequences: a text's LSTM states are the same alone and beside a longer text."""
    features = tiny_lstm.tokenizer(["a dog", "the cat sat on the mat in the park"])
    alone = tiny_lstm.tokenizer(["a dog"])
    with torch.no_grad():
        batched = tiny_lstm(**features)
        single = tiny_lstm(**alone)
    length = int(alone["attention_mask"].sum())
    torch.testing.assert_close(batched[0, :length], single[0], atol=1e-6, rtol=1e-5)
    assert torch.equal(batched[0, length:], torch.zeros_like(batched[0, length:]))


def test_matches_a_plain_lstm_reference(tiny_lstm):
    features = tiny_lstm.tokenizer(["the cat sat on the mat"])
    with torch.no_grad():
        expected, _ = tiny_lstm.lstm(tiny_lstm.embedding(features["input_ids"]))
        torch.testing.assert_close(tiny_lstm(**features), expected)


def test_pretrained_embeddings_are_copied_and_can_be_frozen(tokenizer):
    vocab = tokenizer.get_vocab_size()
    vectors = np.random.default_rng(0).normal(size=(vocab, 8)).astype(np.float32)
    tower = LSTMTower(
        LSTMConfig(vocab_size=vocab, embedding_dim=8, freeze_embeddings=True), tokenizer, embeddings=vectors
    )
    np.testing.assert_array_equal(tower.embedding.weight.detach().numpy(), vectors)
    assert not tower.embedding.weight.requires_grad
    with pytest.raises(ValueError, match=r"embeddings must have shape \(\d+, 9\), got \(\d+, 8\)"):
        LSTMTower(LSTMConfig(vocab_size=vocab, embedding_dim=9), tokenizer, embeddings=vectors)


def test_vocab_must_cover_the_tokenizer(tokenizer):
    with pytest.raises(ValueError, match="LSTMConfig.vocab_size is 10"):
        LSTMTower(LSTMConfig(vocab_size=10), tokenizer)


def test_numpy_config_values_are_stored_plain():
    config = LSTMConfig(vocab_size=np.int64(10), hidden_size=np.int32(4), bidirectional=np.True_)
    assert config.to_dict() == json.loads(json.dumps(config.to_dict()))  # written to config_sentsim.json
    assert type(config.vocab_size) is int and config.bidirectional is True


def test_bad_config_values():
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1"):
        LSTMConfig(vocab_size=10, hidden_size=0)
    with pytest.raises(ValueError, match="dropout"):
        LSTMConfig(vocab_size=10, dropout=1.5)


def test_from_transformer_takes_its_tokenizer_and_input_embeddings(tiny_transformer):
    tower = LSTMTower.from_transformer(tiny_transformer, hidden_size=6)
    source = tiny_transformer.model.get_input_embeddings().weight
    assert tower.config.embedding_dim == 32 and tower.dim == 12
    torch.testing.assert_close(tower.embedding.weight, source)
    assert tower.tokenizer.encode(["the cat"]).ids == tiny_transformer.tokenizer.encode(["the cat"]).ids
    encoder = SentenceEncoder(tower)
    assert encoder.encode(["the cat"]).shape == (1, 12)
    assert tower.max_seq_length == tiny_transformer.max_seq_length == 32  # reads what its teacher reads
    assert LSTMTower.from_transformer(tiny_transformer, max_seq_length=8).max_seq_length == 8


def test_from_a_saved_folder_reads_the_saved_max_seq_length(tiny_transformer, tmp_path):
    tiny_transformer.max_seq_length = 20  # below the 64 positions of its config, as all-MiniLM-L6-v2's 256 of 512
    SentenceEncoder(tiny_transformer).save_pretrained(tmp_path / "model")
    teacher = SentenceEncoder.from_pretrained(tmp_path / "model")
    assert LSTMTower.from_transformer(teacher).max_seq_length == 20
    with pytest.raises(TypeError, match="from_pretrained first"):
        LSTMTower.from_transformer(str(tmp_path / "model"))


def test_a_config_that_does_not_fit_the_weights_is_refused_before_allocating(tiny_lstm, tmp_path):
    folder = tmp_path / "model"
    SentenceEncoder(tiny_lstm).save_pretrained(folder)
    config = json.loads((folder / "config_sentsim.json").read_text())
    for change, message in (
        (
            {"vocab_size": 2**50},
            r"embedding.weight is \(\d+, \d+\) in the file, \(1125899906842624, \d+\) in the config",
        ),
        ({"hidden_size": tiny_lstm.config.hidden_size + 1}, "does not fit the LSTM config: lstm."),
    ):
        (folder / "config_sentsim.json").write_text(json.dumps(config | {"lstm": config["lstm"] | change}))
        with pytest.raises(ValueError, match=message):  # 2**50 rows would take petabytes: checked first
            SentenceEncoder.from_pretrained(folder)


def test_from_word_vectors(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("3 4\ncat 1 0 0 0\ndog 0 1 0 0\nmat 0 0 1 0\n", encoding="utf-8")
    tower = LSTMTower.from_word_vectors(path, hidden_size=5)
    ids = tower.tokenizer.encode(["Cat, dog! zebra"]).ids[0]
    vocab = tower.raw_tokenizer.get_vocab()
    unk = vocab["[UNK]"]
    assert ids == [vocab["cat"], unk, vocab["dog"], unk, unk]  # lowercased; punctuation split off
    weight = tower.embedding.weight.detach().numpy()
    np.testing.assert_array_equal(weight[vocab["dog"]], [0, 1, 0, 0])
    np.testing.assert_allclose(weight[vocab["[UNK]"]], [1 / 3, 1 / 3, 1 / 3, 0], atol=1e-6)
    np.testing.assert_array_equal(weight[vocab["[PAD]"]], 0)


def test_word_vectors_with_bad_lines(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("cat 1 0\ndog 0 x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vectors.txt:2"):
        LSTMTower.from_word_vectors(path)
    path.write_text("cat 1 0\ndog 0 nan\n", encoding="utf-8")  # would make every embedding NaN
    with pytest.raises(ValueError, match="vectors.txt:2: the vector of 'dog' holds NaN or infinity"):
        LSTMTower.from_word_vectors(path)
    with pytest.raises(TypeError, match="LSTMConfig.hidden_size must be an int >= 1, got 8.5"):
        LSTMConfig(vocab_size=10, hidden_size=8.5)
    with pytest.raises(TypeError, match="LSTMConfig.vocab_size must be an int >= 1, got '10'"):
        LSTMConfig(vocab_size="10")


def test_cls_pooling_of_a_forward_only_lstm_is_refused(tokenizer):
    config = LSTMConfig(vocab_size=tokenizer.get_vocab_size(), embedding_dim=8, hidden_size=8, bidirectional=False)
    with pytest.raises(ValueError, match="forward-only LSTM computes from the first token alone"):
        SentenceEncoder(LSTMTower(config, tokenizer), pooling="cls")  # every text would get one embedding
    SentenceEncoder(LSTMTower(config, tokenizer), pooling="mean")
