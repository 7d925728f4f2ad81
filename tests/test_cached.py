"""Cached in-batch negatives (GradCache): the same gradients as one forward over the batch."""

import pytest
import torch

from sentsim.cli import main
from sentsim.training import TrainingConfig, load_training_data, train
from sentsim.training.cached import cached_backward
from sentsim.training.losses import InBatchNegativesLoss, MatryoshkaLoss

from .toy_task import TOPICS, toy_encoder

TEXTS = [text for texts in TOPICS.values() for text in texts]  # 16 texts, 4 topics
ANCHORS = TEXTS
POSITIVES = TEXTS[1:] + TEXTS[:1]
NEGATIVES = TEXTS[6:] + TEXTS[:6]
DUPLICATES = POSITIVES[:8] + POSITIVES[:8]  # every positive twice: masked as each other's negatives
CPU = torch.device("cpu")
NO_SCALING = torch.amp.GradScaler("cpu", enabled=False)


def gradients(encoder) -> dict[str, torch.Tensor]:
    return {
        name: parameter.grad.clone() for name, parameter in encoder.named_parameters() if parameter.grad is not None
    }


def uncached(loss, columns, labels, dropout=0.0):
    """The reference: one forward over the whole batch, the loss, backward."""
    encoder = toy_encoder(dropout=dropout).train()
    features = encoder.tokenize([text for column in columns for text in column])
    embeddings = encoder(features["input_ids"], features["attention_mask"]).split(len(columns[0]))
    value = loss(*embeddings, *[None] * (3 - len(columns)), labels)
    value.backward()
    return float(value.detach()), gradients(encoder)


def cached(loss, columns, labels, mini_batch_size, dropout=0.0):
    encoder = toy_encoder(dropout=dropout).train()
    options = {"device": CPU, "autocast_dtype": None, "scaler": NO_SCALING}
    value = cached_backward(
        encoder, encoder, loss, columns, {"labels": labels}, mini_batch_size=mini_batch_size, **options
    )
    return float(value), gradients(encoder)


def group_ids(texts):
    ids = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    return torch.tensor([ids[text] for text in texts])


@pytest.mark.parametrize(
    "loss, columns, labelled",
    [
        (InBatchNegativesLoss(), [ANCHORS, POSITIVES], False),
        (InBatchNegativesLoss(temperature=0.1), [ANCHORS, POSITIVES, NEGATIVES], False),  # hard negatives
        (InBatchNegativesLoss(symmetric=True), [ANCHORS, POSITIVES], False),
        (InBatchNegativesLoss(symmetric=True), [ANCHORS, POSITIVES, NEGATIVES], False),
        (InBatchNegativesLoss(), [ANCHORS, DUPLICATES], True),  # duplicate masking by group ids
        (MatryoshkaLoss(InBatchNegativesLoss(), [32, 16, 8]), [ANCHORS, POSITIVES, NEGATIVES], True),
    ],
    ids=["plain", "hard-negatives", "symmetric", "symmetric-hard-negatives", "duplicates", "matryoshka"],
)
def test_cached_gradients_equal_the_uncached_loss(loss, columns, labelled):
    labels = group_ids(columns[1]) if labelled else None
    expected_value, expected = uncached(loss, columns, labels)
    value, actual = cached(loss, columns, labels, 5)  # mini-batches of 5, 5, 5 and 1 rows
    assert value == pytest.approx(expected_value, rel=1e-6)
    assert actual.keys() == expected.keys() and len(actual) > 20
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("mini_batch_size", [2, 16])  # small mini-batches; the whole batch at once
def test_any_mini_batch_size_gives_the_same_gradients(mini_batch_size):
    expected_value, expected = uncached(InBatchNegativesLoss(), [ANCHORS, POSITIVES], None)
    value, actual = cached(InBatchNegativesLoss(), [ANCHORS, POSITIVES], None, mini_batch_size)
    assert value == pytest.approx(expected_value, rel=1e-6)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-5, msg=name)


def test_dropout_is_the_same_in_both_passes():
    """With dropout on, the re-run of each mini-batch draws the masks of its no-grad run: the
    gradients are those of the loss on the embeddings the first pass computed."""
    loss, columns, size = InBatchNegativesLoss(), [ANCHORS, POSITIVES], 4
    encoder = toy_encoder(dropout=0.3).train()
    torch.manual_seed(7)
    options = {"device": CPU, "autocast_dtype": None, "scaler": NO_SCALING}
    value = float(cached_backward(encoder, encoder, loss, columns, {"labels": None}, mini_batch_size=size, **options))
    actual = gradients(encoder)
    reference_encoder = toy_encoder(dropout=0.3).train()
    torch.manual_seed(7)  # the same draws, mini-batch by mini-batch, with gradients kept
    pieces = []
    for start in range(0, len(ANCHORS), size):
        features = reference_encoder.tokenize([text for column in columns for text in column[start : start + size]])
        pieces.append(reference_encoder(features["input_ids"], features["attention_mask"]).split(size))
    reference = loss(torch.cat([p[0] for p in pieces]), torch.cat([p[1] for p in pieces]))
    reference.backward()
    assert value == pytest.approx(float(reference.detach()), rel=1e-6)
    assert value != pytest.approx(uncached(loss, columns, None)[0], rel=1e-3)  # dropout is on
    for name, gradient in gradients(reference_encoder).items():
        torch.testing.assert_close(actual[name], gradient, rtol=1e-5, atol=1e-5, msg=name)


def test_training_with_mini_batches_equals_training_without():
    data = load_training_data({"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES})
    config = TrainingConfig(epochs=1, batch_size=8, learning_rate=1e-3, show_progress=False, log_steps=1)
    runs = []
    for mini_batch_size in (None, 3):
        encoder, losses = toy_encoder(dropout=0.0), []
        loss = InBatchNegativesLoss(symmetric=True, mini_batch_size=mini_batch_size)
        train(encoder, data, loss, config, on_step=lambda step, value, losses=losses: losses.append(value))
        runs.append((losses, encoder.state_dict()))
    assert runs[1][0] == pytest.approx(runs[0][0], rel=1e-5)
    for name, tensor in runs[0][1].items():
        torch.testing.assert_close(runs[1][1][name], tensor, rtol=1e-4, atol=1e-6, msg=name)


def test_a_mini_batch_larger_than_the_batch_is_refused_before_any_step(tmp_path, capsys):
    data = load_training_data({"anchor": ANCHORS, "positive": POSITIVES})
    config = TrainingConfig(batch_size=8, show_progress=False)
    with pytest.raises(ValueError, match="mini_batch_size 16 is larger than batch_size 8"):
        train(toy_encoder(), data, InBatchNegativesLoss(mini_batch_size=16), config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="mini_batch_size must be an int >= 1 or None, got 0"):
        InBatchNegativesLoss(mini_batch_size=0)
    assert InBatchNegativesLoss(mini_batch_size=4).config()["mini_batch_size"] == 4  # a resume must use the same

    source = tmp_path / "pairs.csv"
    source.write_text("anchor,positive\n" + "\n".join(f"{a},{p}" for a, p in zip(ANCHORS, POSITIVES, strict=True)))
    toy_encoder().save_pretrained(tmp_path / "model")
    args = ["train", "--model", str(tmp_path / "model"), "--train", str(source), "--batch-size", "8", "--no-progress"]
    for extra, message in [
        (["--loss", "cosent", "--mini-batch-size", "4"], "--mini-batch-size applies to --loss mnrl"),
        (["--loss", "mnrl", "--mini-batch-size", "16"], "mini_batch_size 16 is larger than batch_size 8"),
    ]:
        assert main([*args, *extra, "--output", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err
    assert main([*args, "--loss", "mnrl", "--mini-batch-size", "4", "--output", str(tmp_path / "out")]) == 0
    assert '"mini_batch_size": 4' in (tmp_path / "out" / "run.json").read_text()
