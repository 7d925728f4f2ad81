"""Matryoshka: the loss against a naive sum over truncations, truncating encoders, the recorded
dimensions, the CLI flags and an index of truncated embeddings."""

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.data import read_sts
from sentsim.evaluation import evaluate_sts
from sentsim.search import DocumentIndex
from sentsim.training import TrainingConfig, load_training_data, train
from sentsim.training.losses import EmbeddingMSELoss, MatryoshkaLoss, make_loss

from .toy_task import TOPICS, columns, toy_encoder, toy_pairs

TEXTS = [text for texts in TOPICS.values() for text in texts]
QUICK = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, show_progress=False)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(6, 16), torch.randn(6, 16), torch.randn(6, 16)


@pytest.mark.parametrize("name", ["cosine", "cosent", "contrastive", "triplet", "mnrl"])
def test_loss_is_the_weighted_sum_of_the_inner_loss_on_truncated_renormalized_embeddings(batch, name):
    a, p, n = batch
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0]) if name != "mnrl" else None
    inner = make_loss(name)
    expected = sum(
        weight * float(inner(*(F.normalize(x[:, :dim], dim=-1) for x in (a, p, n)), labels))
        for dim, weight in ((16, 1.0), (8, 0.5), (4, 2.0))
    )
    loss = MatryoshkaLoss(inner, [16, 8, 4], weights=[1, 0.5, 2])
    assert float(loss(a, p, n, labels)) == pytest.approx(expected, rel=1e-5)
    assert loss.columns == inner.columns and loss.target == inner.target


def test_loss_settings_and_mistakes():
    loss = MatryoshkaLoss(make_loss("cosent", scale=10), [64, 32])
    assert loss.config() == {
        "inner": "CoSENTLoss",
        "inner_config": {"scale": 10.0, "gather": True},
        "dims": [64, 32],
        "weights": [1.0, 1.0],
    }
    assert MatryoshkaLoss(make_loss("cosine")).score_bounds == (-1.0, 1.0)  # the inner loss's range check applies
    with pytest.raises(ValueError, match=r"dims must be strictly descending \(largest first\), got \[64, 128\]"):
        MatryoshkaLoss(make_loss("cosent"), [64, 128])
    with pytest.raises(ValueError, match=r"dims\[1\] must be an int >= 1, got 0"):
        MatryoshkaLoss(make_loss("cosent"), [64, 0])
    with pytest.raises(TypeError, match="dims must be a non-empty list of ints"):
        MatryoshkaLoss(make_loss("cosent"), [])
    with pytest.raises(ValueError, match="weights must be a list of 2 numbers, one per dimension"):
        MatryoshkaLoss(make_loss("cosent"), [64, 32], weights=[1.0])
    with pytest.raises(ValueError, match=r"weights\[1\] must be a finite number > 0, got -1"):
        MatryoshkaLoss(make_loss("cosent"), [64, 32], weights=[1.0, -1])
    with pytest.raises(TypeError, match="inner_loss must be a CosineSimilarityLoss, CoSENTLoss"):
        MatryoshkaLoss(EmbeddingMSELoss(), [64, 32])


def test_encode_truncates_and_renormalizes_when_the_model_normalizes():
    for normalize in (True, False):
        encoder = toy_encoder(dropout=0.0).eval()
        encoder.normalize = normalize
        full = encoder.encode(TEXTS)
        with pytest.warns(UserWarning, match="truncating embeddings to 8 of 32 dimensions: this model was not trained"):
            cut = encoder.encode(TEXTS, truncate_dim=8)
        expected = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True) if normalize else full[:, :8]
        np.testing.assert_allclose(cut, expected, atol=1e-6)
        assert encoder.dim == 32  # a call's truncation does not change the encoder
        encoder.truncate_dim = 8
        assert encoder.dim == 8 and encoder.full_dim == 32
        np.testing.assert_allclose(encoder.encode(TEXTS), expected, atol=1e-6)
        features = encoder.tokenize(TEXTS[:2])
        assert encoder(features["input_ids"], features["attention_mask"]).shape == (2, 8)  # the training path too
        assert encoder.encode(TEXTS, truncate_dim=32).shape == (16, 32)  # the full dimension: no truncation


def test_truncation_warns_once_and_not_for_trained_dimensions(tmp_path):
    encoder = toy_encoder(dropout=0.0).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoder.encode(TEXTS[:2], truncate_dim=16)
        encoder.encode(TEXTS[:2], truncate_dim=8)
        encoder.truncate_dim = 4
    assert len(caught) == 1
    encoder.matryoshka_dims = [32, 16, 8]
    encoder.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config_sentsim.json").read_text())["matryoshka_dims"] == [32, 16, 8]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = SentenceEncoder.from_pretrained(tmp_path / "model", truncate_dim=16)
    assert loaded.matryoshka_dims == (32, 16, 8) and loaded.dim == 16
    with pytest.warns(UserWarning, match=r"trained for \[32, 16, 8\], not 4"):
        loaded.encode(TEXTS[:1], truncate_dim=4)


@pytest.mark.parametrize(
    "value, error, message",
    [
        (0, ValueError, "truncate_dim must be an int >= 1 or None, got 0"),
        (33, ValueError, "truncate_dim must be at most the model's 32 dimensions, got 33"),
        (8.0, TypeError, "truncate_dim must be an int >= 1 or None, got 8.0"),
    ],
)
def test_bad_truncations_are_named(tmp_path, value, error, message):
    encoder = toy_encoder()
    with pytest.raises(error, match=message):
        encoder.encode(TEXTS[:1], truncate_dim=value)
    with pytest.raises(error, match=message):
        encoder.truncate_dim = value
    encoder.save_pretrained(tmp_path / "model")
    with pytest.raises(error, match=message):
        SentenceEncoder.from_pretrained(tmp_path / "model", truncate_dim=value)
    with pytest.raises(ValueError, match=r"matryoshka_dims \[64, 32\] go above the model's 32 dimensions"):
        encoder.matryoshka_dims = [64, 32]


def test_training_records_the_dimensions_and_refuses_dims_above_the_model(tmp_path):
    encoder = toy_encoder()
    before = {name: tensor.clone() for name, tensor in encoder.state_dict().items()}
    with pytest.raises(ValueError, match=r"MatryoshkaLoss dims \[64, 16\] go above the model's 32 dimensions"):
        train(encoder, load_training_data(columns(toy_pairs())), MatryoshkaLoss(make_loss("cosent"), [64, 16]), QUICK)
    assert all(torch.equal(before[name], tensor) for name, tensor in encoder.state_dict().items())  # no step ran

    loss = MatryoshkaLoss(make_loss("cosent"), [32, 16, 8])
    train(encoder, load_training_data(columns(toy_pairs())), loss, QUICK, output_dir=tmp_path / "run")
    assert encoder.matryoshka_dims == (32, 16, 8)
    assert SentenceEncoder.from_pretrained(tmp_path / "run" / "final").matryoshka_dims == (32, 16, 8)
    train(encoder, load_training_data(columns(toy_pairs())), make_loss("cosent"), QUICK)  # plain fine-tuning
    assert encoder.matryoshka_dims is None  # its truncations are no longer what it was trained for


def test_sentence_transformers_loads_a_trained_folder_and_truncates_alike(tmp_path):
    st = pytest.importorskip("sentence_transformers")
    encoder = toy_encoder()
    train(encoder, load_training_data(columns(toy_pairs())), MatryoshkaLoss(make_loss("cosent"), [32, 8]), QUICK)
    encoder.normalize = True
    encoder.save_pretrained(tmp_path / "model")
    theirs = st.SentenceTransformer(str(tmp_path / "model"), device="cpu", truncate_dim=8)
    ours = SentenceEncoder.from_pretrained(tmp_path / "model", truncate_dim=8)
    np.testing.assert_allclose(theirs.encode(TEXTS, normalize_embeddings=True), ours.encode(TEXTS), atol=1e-5)


def test_cli_trains_encodes_and_evaluates_with_matryoshka(tmp_path, capsys):
    pairs = toy_pairs()
    data = tmp_path / "pairs.csv"
    rows = zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
    data.write_text("\n".join(f"{a},{b},{score * 5}" for a, b, score in rows))
    toy_encoder().save_pretrained(tmp_path / "model")
    train_args = ["train", "--model", str(tmp_path / "model"), "--train", str(data), "--loss", "cosent"]
    train_args += ["--score-range", "0", "5", "--batch-size", "8", "--lr", "1e-3", "--no-progress"]
    for dims, message in [
        ("8,16", "--matryoshka: dims must be strictly descending (largest first), got [8, 16]"),
        ("64,8", "MatryoshkaLoss dims [64, 8] go above the model's 32 dimensions"),
    ]:
        assert main([*train_args, "--matryoshka", dims, "--output", str(tmp_path / "bad")]) == 2
        assert capsys.readouterr().err == f"sentsim train: error: {message}\n"
    assert main([*train_args, "--matryoshka", "32,16,8", "--output", str(tmp_path / "run")]) == 0
    model = tmp_path / "run" / "final"
    assert SentenceEncoder.from_pretrained(model).matryoshka_dims == (32, 16, 8)

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    encode_args = ["encode", "--model", str(model), "--input", str(texts), "--output", str(tmp_path / "out.npy")]
    assert main([*encode_args, "--truncate-dim", "8"]) == 0
    truncated = SentenceEncoder.from_pretrained(model, truncate_dim=8)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), truncated.encode(TEXTS), atol=1e-6)
    capsys.readouterr()
    assert main(["eval", "sts", "--model", str(model), "--data", str(data), "--truncate-dim", "8", "--json"]) == 0
    expected = evaluate_sts(truncated, read_sts(str(data)), show_progress=False)["spearman"]
    assert json.loads(capsys.readouterr().out)["spearman"] == pytest.approx(expected)
    assert main([*encode_args, "--truncate-dim", "64"]) == 2
    assert "truncate_dim must be at most the model's 32 dimensions, got 64" in capsys.readouterr().err


def test_an_index_of_truncated_embeddings_records_the_dimension_and_reopens_truncated(tmp_path):
    encoder = toy_encoder().eval()
    encoder.matryoshka_dims = [32, 8]
    encoder.save_pretrained(tmp_path / "model")
    truncated = SentenceEncoder.from_pretrained(tmp_path / "model", truncate_dim=8)
    with DocumentIndex.create(tmp_path / "index", truncated) as index:
        index.add(TEXTS, ids=list(range(len(TEXTS))))
        expected = index.search(TEXTS[0], k=3)
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model"]["dim"] == 8
    with DocumentIndex.open(tmp_path / "index") as index:  # loads the recorded model, truncated as the index is
        assert index.search(TEXTS[0], k=3) == expected
    with pytest.raises(ValueError, match=r"differs in dim \(the index holds embeddings truncated to 8"):
        DocumentIndex.open(tmp_path / "index", SentenceEncoder.from_pretrained(tmp_path / "model"))
