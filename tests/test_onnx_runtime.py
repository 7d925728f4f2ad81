"""encode(..., runtime="onnx"): ONNX Runtime on CPU gives the torch path's embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sentsim.encode.precision
from sentsim import SentenceEncoder

pytest.importorskip("onnxruntime")

TEXTS = ["The cat sat on the mat.", "", "A dog is running in the park.", "Rain is expected over the weekend."]


def test_onnx_runtime_equals_torch(tiny_transformer):
    encoder = SentenceEncoder(tiny_transformer, normalize=True).eval()
    np.testing.assert_allclose(encoder.encode(TEXTS, runtime="onnx"), encoder.encode(TEXTS), atol=1e-5)


def test_onnx_runtime_is_exported_again_after_the_weights_change(tiny_transformer, monkeypatch, tmp_path):
    import sentsim.encode.onnx as onnx

    monkeypatch.setenv("SENTSIM_CACHE", str(tmp_path))  # an empty cache
    exports = []
    export = onnx.export_onnx
    monkeypatch.setattr(onnx, "export_onnx", lambda model: exports.append(1) or export(model))
    encoder = SentenceEncoder(tiny_transformer).eval()
    before = encoder.encode(TEXTS, runtime="onnx")
    assert encoder.encode(TEXTS, runtime="onnx") is not None and len(exports) == 1  # the export is reused
    fresh = SentenceEncoder(tiny_transformer).eval()  # as in another process: the export cached on disk
    np.testing.assert_allclose(fresh.encode(TEXTS, runtime="onnx"), before, atol=1e-6)
    assert len(exports) == 1 and len(list((tmp_path / "fp32").glob("*.onnx"))) == 1
    with torch.no_grad():
        for parameter in encoder.tower.parameters():
            parameter.mul_(1.5)  # what an optimizer step does: an in-place update
    after = encoder.encode(TEXTS, runtime="onnx")
    assert len(exports) == 2
    np.testing.assert_allclose(after, encoder.encode(TEXTS), atol=1e-5)
    assert not np.allclose(after, before, atol=1e-3)


def test_onnx_runtime_rejects_what_it_cannot_run(tiny_transformer, tiny_lstm, monkeypatch):
    monkeypatch.setattr(sentsim.encode.precision, "cpu_computes", lambda precision: True)
    with pytest.raises(ValueError, match="runs transformer towers; this one is a lstm tower"):
        SentenceEncoder(tiny_lstm).encode(TEXTS, runtime="onnx")
    with pytest.raises(ValueError, match="on CPU in fp32 on the padded path, not with packed=True$"):
        SentenceEncoder(tiny_transformer).encode(TEXTS, runtime="onnx", packed=True)
    with pytest.raises(ValueError, match="padded path, not with dtype='bfloat16'$"):  # only what conflicts
        SentenceEncoder(tiny_transformer).encode(TEXTS, runtime="onnx", dtype="bf16")
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        SentenceEncoder(tiny_transformer).encode(TEXTS, runtime="tensorrt")


@pytest.mark.slow
def test_minilm_onnx_runtime_matches_torch(minilm):
    texts = TEXTS * 10
    np.testing.assert_allclose(minilm.encode(texts, runtime="onnx"), minilm.encode(texts), atol=1e-5)
