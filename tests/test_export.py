"""``sentsim export onnx``: a model folder with onnx/model.onnx that ONNX Runtime runs like the torch model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentsim import SentenceEncoder
from sentsim.cli import main
from sentsim.encode.export import export_onnx_folder

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TEXTS = ["A man plays the guitar.", "The committee approved the budget on Monday.", "Rain."]


def _hidden_states(model_file, encoder: SentenceEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    batch = encoder.tower.tokenizer(texts)
    session = onnxruntime.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    feeds = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
    (ours,) = session.run(["last_hidden_state"], feeds)
    return ours, encoder.tower(**batch).detach().numpy()


@pytest.mark.parametrize("int8", [False, True])
def test_export_writes_a_folder_onnx_runtime_and_sentsim_load(tiny_transformer, tmp_path, int8, capsys):
    source = tmp_path / "model"
    SentenceEncoder(tiny_transformer, normalize=True).save_pretrained(source)
    out = tmp_path / "exported"
    assert main(["export", "onnx", str(source), str(out), *(["--int8"] if int8 else [])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["int8"] is int8 and report["onnx"] == "onnx/model.onnx"

    assert (out / "model.onnx").read_bytes() == (out / "onnx" / "model.onnx").read_bytes()  # where fastembed looks
    for name in ("config.json", "tokenizer.json", "modules.json", "model.safetensors", "config_sentsim.json"):
        assert (out / name).exists()
    encoder = SentenceEncoder.from_pretrained(str(out), device="cpu")
    np.testing.assert_allclose(encoder.encode(TEXTS), SentenceEncoder.from_pretrained(str(source)).encode(TEXTS))
    ours, reference = _hidden_states(out / "onnx" / "model.onnx", encoder, TEXTS)
    if int8:
        pooled = [x.mean(axis=1) for x in (ours, reference)]
        cosine = (pooled[0] * pooled[1]).sum(1) / np.linalg.norm(pooled[0], axis=1) / np.linalg.norm(pooled[1], axis=1)
        assert cosine.min() > 0.99 and report["min_cosine"] >= 0.99
    else:
        np.testing.assert_allclose(ours, reference, atol=1e-5)
        assert report["max_abs_diff"] <= 1e-4


def test_export_refusals_write_nothing(tiny_transformer, tiny_lstm, tmp_path):
    with pytest.raises(ValueError, match="needs a transformer tower; this one is a lstm tower"):
        export_onnx_folder(SentenceEncoder(tiny_lstm), tmp_path / "lstm")
    assert not (tmp_path / "lstm").exists()
    out = tmp_path / "exported"
    encoder = SentenceEncoder(tiny_transformer)
    export_onnx_folder(encoder, out)
    first = (out / "onnx" / "model.onnx").read_bytes()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export_onnx_folder(encoder, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"
    export_onnx_folder(encoder, out)  # a model folder is replaced, as save_pretrained does
    assert (out / "onnx" / "model.onnx").read_bytes() == first
