"""A model folder with an ONNX copy of its transformer (``onnx/model.onnx``), for ONNX-only runtimes.

sentence-transformers' ONNX backend (``backend="onnx"``), fastembed (its entry for the model, with
``specific_model_path``) and infinity-emb's optimum engine read the folder: the Hugging Face files
at its root, the sentence-transformers modules (pooling, dense, normalize) beside them, and the
transformer as ONNX (``input_ids``, ``attention_mask`` -> ``last_hidden_state``), also hard-linked
as ``model.onnx`` at the root, where fastembed looks. The export is
checked against the torch model before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from sentsim.encode.onnx import OnnxForward, onnx_model
from sentsim.storage.model_folder import save_parts

ONNX_FILE = "onnx/model.onnx"
MAX_FP32_DIFF = 1e-4  # largest |difference| of a hidden state allowed for an fp32 export
MIN_INT8_COSINE = 0.99  # lowest cosine of a mean-pooled output allowed for an int8 export


def export_onnx_folder(encoder, folder: str | Path, *, int8: bool = False, overwrite: bool = False) -> dict:
    """Save ``encoder`` to ``folder`` with its transformer as ONNX (fp32, or ``int8``); returns how
    close the ONNX outputs are to torch's on the calibration texts (``max_abs_diff``, ``min_cosine``).

    Raises a ValueError for a tower that is not a transformer or a model not on the CPU, and a
    RuntimeError, writing nothing, when the export does not match the torch model.
    """
    if getattr(encoder, "adapter", None) is not None:  # ONNX holds plain weights: the adapter folded in
        from sentsim.lora import merge_lora

        encoder = merge_lora(encoder)
    if encoder.tower.kind != "transformer":
        raise ValueError(f"ONNX export needs a transformer tower; this one is a {encoder.tower.kind} tower")
    if encoder.device.type != "cpu":
        raise ValueError(f"export from a model on the CPU (this one is on {encoder.device}); load it with device='cpu'")
    model = onnx_model(encoder.tower, int8=int8)
    closeness = OnnxForward(encoder.tower, int8=int8, model=model).closeness()
    if closeness["min_cosine"] < MIN_INT8_COSINE if int8 else closeness["max_abs_diff"] > MAX_FP32_DIFF:
        raise RuntimeError(
            f"the ONNX export does not match the torch model (largest |difference| {closeness['max_abs_diff']:.2e}, "
            f"lowest cosine {closeness['min_cosine']:.5f}); nothing was written"
        )
    save_parts(
        encoder.parts(), Path(folder), overwrite=overwrite, extra={ONNX_FILE: model}, links={"model.onnx": ONNX_FILE}
    )
    return closeness
