"""A transformer tower's forward through ONNX Runtime, for CPU inference (``pip install onnxruntime``).

ONNX Runtime fuses attention, layer norm and GELU into single CPU kernels; whether that beats
eager torch depends on the CPU (``benchmarks/bench_encode.py --device cpu``); the embeddings agree
to about 1e-6. The model is exported from the tower's current weights (seconds, once per weights:
cached on disk by :mod:`sentsim.encode.onnx_cache`); a change to the weights (training) makes
:meth:`OnnxForward.is_current` false.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import torch
from torch import Tensor, nn

from sentsim.encode.calibration import CALIBRATION_TEXTS
from sentsim.encode.onnx_cache import cached_onnx
from sentsim.encode.quantization import quantized_onnx
from sentsim.towers.transformer import TransformerTower

logger = logging.getLogger(__name__)


class OnnxForward:
    """``(input_ids, attention_mask) -> last hidden states``, like ``TransformerTower.forward``, on CPU.

    Args:
        tower: the transformer tower to export (its weights as they are now).
        int8: run the int8 model of :mod:`sentsim.encode.quantization` (cached on disk) instead of fp32.
        threads: ONNX Runtime's intra-op threads (default: torch's thread count).
    """

    def __init__(
        self, tower: TransformerTower, *, int8: bool = False, threads: int | None = None, model: bytes | None = None
    ) -> None:
        try:
            import onnxruntime
        except ImportError:
            what = "dtype='int8'" if int8 else "runtime='onnx'"
            raise ImportError(f"{what} needs ONNX Runtime: pip install onnxruntime onnx") from None
        self.tower, self.version = tower, weights_version(tower)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        model = model if model is not None else onnx_model(tower, int8=int8)
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def is_current(self) -> bool:
        """Whether the tower's weights are still those that were exported."""
        return weights_version(self.tower) == self.version

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return torch.from_numpy(np.ascontiguousarray(hidden))  # (B, L, D)

    def closeness(self) -> dict[str, float]:
        """How this model's outputs on the calibration texts compare to the torch tower's in fp32:
        the largest absolute difference of a hidden state, and the lowest cosine of mean-pooled ones."""
        batch = self.tower.tokenizer(list(CALIBRATION_TEXTS))
        mask = batch["attention_mask"].unsqueeze(-1).float()
        with torch.inference_mode():
            ours, reference = self(**batch), self.tower(**batch)
        pooled = [(hidden * mask).sum(1) / mask.sum(1) for hidden in (ours, reference)]
        return {
            "max_abs_diff": float(((ours - reference) * mask).abs().max()),
            "min_cosine": float(torch.nn.functional.cosine_similarity(*pooled).min()),
        }


def onnx_model(tower: TransformerTower, *, int8: bool = False) -> bytes:
    """The tower as ONNX bytes, fp32 or int8 (:mod:`sentsim.encode.quantization`), from the disk cache
    where a process built it before for the same weights."""
    if int8:
        return cached_onnx(tower.model, "int8", lambda: _checked_int8(tower))
    return cached_onnx(tower.model, "fp32", lambda: export_onnx(tower.model))


def _checked_int8(tower: TransformerTower) -> bytes:
    """A new int8 model of ``tower``, its lowest cosine to fp32 on the calibration texts (mean-pooled)
    logged once, when it is built: a warning below 0.99."""
    model = quantized_onnx(tower, export_onnx)
    lowest = OnnxForward(tower, model=model).closeness()["min_cosine"]
    log = logger.warning if lowest < 0.99 else logger.info
    log("int8 model: lowest cosine to fp32 on the calibration texts %.4f (0.99 or more expected)", lowest)
    return model


def weights_version(module: nn.Module) -> tuple[int, ...]:
    """Changes whenever a parameter is modified in place (an optimizer step, ``load_state_dict``)."""
    return tuple(parameter._version for parameter in module.parameters())


class _LastHiddenState(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(model: nn.Module) -> bytes:
    """A Hugging Face transformer as ONNX bytes (``input_ids``, ``attention_mask`` -> ``last_hidden_state``),
    with dynamic batch and sequence axes."""
    example = torch.ones((2, 8), dtype=torch.long)
    buffer = io.BytesIO()
    axes = {0: "batch", 1: "tokens"}
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's tracer warnings
            torch.onnx.export(
                _LastHiddenState(model),
                (example, example),
                buffer,
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()
