"""Packed training: the same weights as the padded path, dropout still applied, losses read lazily."""

import numpy as np
import pytest
import torch

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.training import CoSENTLoss, InBatchNegativesLoss, TrainingConfig, load_training_data, train
from sentsim.training.features import text_inputs
from sentsim.training.trainer import LossTrack

from .toy_task import TOPICS, toy_encoder, toy_pairs

TEXTS = [text for texts in TOPICS.values() for text in texts]


def trained(loss, data, *, packed: bool, **options) -> tuple[SentenceEncoder, list[float]]:
    encoder = toy_encoder(dropout=0.0)
    steps = []
    config = TrainingConfig(
        epochs=2, batch_size=8, learning_rate=1e-3, packed=packed, show_progress=False, log_steps=3, **options
    )
    result = train(encoder, data, loss, config, device="cpu", on_step=lambda step, value: steps.append(value))
    assert result.steps == len(steps)
    return encoder, steps


@pytest.mark.parametrize(
    "loss, columns",
    [
        (CoSENTLoss(), "pairs"),
        (InBatchNegativesLoss(), "triplets"),
        (InBatchNegativesLoss(mini_batch_size=3), "triplets"),  # GradCache on packed mini-batches
    ],
    ids=["cosent", "in-batch", "in-batch-cached"],
)
def test_packed_training_gives_the_padded_weights(loss, columns):
    pairs = toy_pairs()
    if columns == "pairs":
        data = load_training_data(
            {"sentence1": pairs.sentences1, "sentence2": pairs.sentences2, "score": pairs.scores.tolist()}
        )
    else:
        data = load_training_data(
            {"anchor": TEXTS, "positive": TEXTS[1:] + TEXTS[:1], "negative": TEXTS[6:] + TEXTS[:6]}
        )
    padded, padded_losses = trained(loss, data, packed=False)
    packed, packed_losses = trained(loss, data, packed=True)
    assert len(padded_losses) == (8 if columns == "pairs" else 4)
    torch.testing.assert_close(packed_losses, padded_losses, rtol=1e-5, atol=1e-6)
    for (name, before), after in zip(padded.state_dict().items(), packed.state_dict().values(), strict=True):
        torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5, msg=name)
    query = "tower.model.encoder.layer.0.attention.self.query.weight"
    assert not torch.allclose(packed.state_dict()[query], toy_encoder(dropout=0.0).state_dict()[query])  # it trained


def test_packed_forward_applies_dropout_in_training_only():
    encoder = toy_encoder(dropout=0.3)
    inputs = encoder.tower.tokenizer.encode(TEXTS)
    packed = text_inputs(encoder, TEXTS, torch.device("cpu"), packed=True)
    assert packed.input_ids.shape == (int(inputs.lengths.sum()),)
    encoder.train()
    first, second = encoder(packed.input_ids, layout=packed.layout), encoder(packed.input_ids, layout=packed.layout)
    assert first.shape == (len(TEXTS), encoder.dim) and first.requires_grad
    assert (first - second).abs().max() > 1e-3  # a fresh dropout mask each call
    encoder.eval()
    padded = text_inputs(encoder, TEXTS, torch.device("cpu"), packed=False)
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(packed.input_ids, layout=packed.layout),
            encoder(padded.input_ids, padded.attention_mask),
            rtol=1e-5,
            atol=1e-5,
        )


def test_packed_training_needs_a_packable_tower(tiny_lstm):
    encoder = SentenceEncoder(tiny_lstm)
    data = load_training_data({"anchor": TEXTS, "positive": TEXTS[1:] + TEXTS[:1]})
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    with pytest.raises(ValueError, match="packed=True needs a BERT/RoBERTa-family transformer tower"):
        train(encoder, data, InBatchNegativesLoss(), TrainingConfig(batch_size=4, packed=True, show_progress=False))
    assert all(torch.equal(before[name], value) for name, value in encoder.state_dict().items())


def test_training_config_checks_packed():
    assert TrainingConfig().packed is None
    with pytest.raises(TypeError, match="packed must be True, False or None, got 'yes'"):
        TrainingConfig(packed="yes")


def test_loss_track_reads_every_pending_loss_once():
    track = LossTrack(world=1)
    for value in (0.5, 0.25, 2.0):
        track.add(torch.tensor(value, requires_grad=True) * 1)
    assert track.values() == [0.5, 0.25, 2.0]
    track.add(torch.tensor(1.0))
    assert track.values() == [0.5, 0.25, 2.0, 1.0]


def test_cli_train_packed(tmp_path, tiny_lstm, capsys):
    source = tmp_path / "pairs.csv"
    source.write_text(
        "anchor,positive\n" + "\n".join(f"{a},{p}" for a, p in zip(TEXTS, TEXTS[1:] + TEXTS[:1], strict=True))
    )
    toy_encoder().save_pretrained(tmp_path / "bert")
    SentenceEncoder(tiny_lstm).save_pretrained(tmp_path / "lstm")
    args = ["train", "--train", str(source), "--loss", "mnrl", "--batch-size", "8", "--no-progress", "--packed"]
    assert main([*args, "--model", str(tmp_path / "lstm"), "--output", str(tmp_path / "refused")]) == 2
    assert "packed=True needs a BERT/RoBERTa-family transformer tower" in capsys.readouterr().err
    assert main([*args, "--model", str(tmp_path / "bert"), "--output", str(tmp_path / "out")]) == 0
    trained = SentenceEncoder.from_pretrained(tmp_path / "out" / "final")
    assert not np.allclose(trained.encode(TEXTS[:2]), toy_encoder().encode(TEXTS[:2]))


@pytest.mark.gpu
def test_packed_bf16_training_on_cuda_follows_the_padded_run():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pairs = toy_pairs()
    data = load_training_data({"sentence1": pairs.sentences1, "sentence2": pairs.sentences2, "score": pairs.scores})
    runs = {}
    for packed in (False, True):
        encoder, steps = toy_encoder(dropout=0.0), []
        config = TrainingConfig(epochs=2, batch_size=8, learning_rate=1e-3, precision="bf16", packed=packed)
        train(
            encoder,
            data,
            CoSENTLoss(),
            config,
            device="cuda",
            on_step=lambda step, value, steps=steps: steps.append(value),
        )
        runs[packed] = steps, encoder.encode(TEXTS, dtype="fp32")
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=0.05, atol=0.05)  # bf16 rounding
    cosine = (runs[True][1] * runs[False][1]).sum(1)
    assert cosine.min() > 0.99
