"""dtype="int8": the tower's linear layers on ONNX Runtime's integer kernels, cached by the weights' digest."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import sentsim.encode.onnx_cache as onnx_cache
import sentsim.encode.quantization as quantization
from sentsim import SentenceEncoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["A man plays the guitar.", "The committee approved the budget.", "Rain over the weekend.", ""] * 5


def test_int8_is_close_to_fp32_and_cached_by_weights(tiny_transformer, sentsim_cache, monkeypatch):
    encoder = SentenceEncoder(tiny_transformer).eval()
    reference = encoder.encode(TEXTS, normalize=True)
    int8 = encoder.encode(TEXTS, normalize=True, dtype="int8")
    assert int8.dtype == np.float32 and int8.shape == reference.shape
    assert np.sum(int8 * reference, axis=1).min() > 0.99
    assert not np.array_equal(int8, reference)  # integer kernels ran
    cached = list((sentsim_cache / "int8").glob("*.onnx"))
    digest = onnx_cache.weights_digest(tiny_transformer.model, "int8")
    assert (sentsim_cache / "int8" / f"{digest}.onnx") in cached

    built = []
    real = quantization._quantized
    monkeypatch.setattr(quantization, "_quantized", lambda model: built.append(1) or real(model))
    fresh = SentenceEncoder(tiny_transformer).eval()  # another process, the same weights: the cache
    np.testing.assert_allclose(fresh.encode(TEXTS, normalize=True, dtype="int8"), int8, atol=1e-6)
    assert built == []

    with torch.no_grad():  # changed weights (as after training): never the stale model
        tiny_transformer.model.encoder.layer[0].output.dense.bias.add_(0.5)
    try:
        changed = encoder.encode(TEXTS, normalize=True, dtype="int8")
        assert built == [1]
        assert onnx_cache.weights_digest(tiny_transformer.model, "int8") != digest
        np.testing.assert_allclose(np.sum(changed * encoder.encode(TEXTS, normalize=True), axis=1), 1.0, atol=0.01)
    finally:
        with torch.no_grad():
            tiny_transformer.model.encoder.layer[0].output.dense.bias.sub_(0.5)


def test_int8_refuses_what_it_cannot_run(tiny_transformer, tiny_lstm):
    with pytest.raises(ValueError, match="dtype='int8' runs transformer towers; this one is a lstm tower"):
        SentenceEncoder(tiny_lstm).encode(TEXTS, dtype="int8")
    with pytest.raises(ValueError, match="does not combine with runtime='compile'"):
        SentenceEncoder(tiny_transformer).encode(TEXTS, dtype="int8", runtime="compile")
    with pytest.raises(ValueError, match="runs on CPU in int8 on the padded path, not with packed=True$"):
        SentenceEncoder(tiny_transformer).encode(TEXTS, dtype="int8", packed=True)


def test_smoothing_keeps_the_fp32_function(tiny_transformer):
    batch = tiny_transformer.tokenizer(TEXTS)
    smoothed = quantization._smoothed_copy(tiny_transformer.model, batch)
    with torch.inference_mode():
        before = tiny_transformer.model(**batch).last_hidden_state
        after = smoothed(**batch).last_hidden_state
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)
    rescaled = [m for m in smoothed.modules() if isinstance(m, quantization._Rescaled)]
    # per layer query, key, value, attention output, intermediate (not the down-projection); BERT's pooler
    assert len(rescaled) == 2 * 5 + 1


@pytest.mark.slow
def test_minilm_int8_quality_on_stsb(minilm_path):
    from scipy.stats import spearmanr

    from tests.conftest import DATA_DIR

    rows = list(csv.reader(open(DATA_DIR / "stsb" / "test.csv", encoding="utf-8")))
    a, b, gold = [r[0] for r in rows], [r[1] for r in rows], [float(r[2]) for r in rows]
    encoder = SentenceEncoder.from_pretrained(str(minilm_path), device="cpu")
    fp32 = encoder.encode(a + b)
    int8 = encoder.encode(a + b, dtype="int8")
    assert np.sum(fp32 * int8, axis=1).min() >= 0.99
    spearman = 100 * spearmanr(np.sum(int8[: len(a)] * int8[len(a) :], axis=1), gold).statistic
    assert abs(spearman - 82.03) <= 0.5
