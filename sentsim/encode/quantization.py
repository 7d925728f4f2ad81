"""int8 inference on CPU: a transformer tower as an ONNX model whose linear layers run on ONNX
Runtime's integer kernels (cached on disk by :mod:`sentsim.encode.onnx_cache`).

Recipe (``dtype="int8"``): each linear layer's input channels are rescaled SmoothQuant-style
(``s = max|x|^0.5 / max|w|^0.5``, measured on :data:`CALIBRATION_TEXTS`; ``x / s`` and ``w * s``
give the same product with the activation outliers moved into the weights); the model is
exported to ONNX and ONNX Runtime quantizes the weights per output channel and the activations
per tensor at run time (7-bit, which AVX2 and VNNI multiply without overflow). The feed-forward
down-projections (more input than output features: the GELU outputs, whose outliers no
scaling tames) stay fp32. On all-MiniLM-L6-v2 this keeps every STS-B test text's cosine to fp32
above 0.99 (``benchmarks/bench_encode.py --device cpu``); quantizing them too drops it below.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from sentsim.encode.calibration import CALIBRATION_TEXTS

logger = logging.getLogger(__name__)

SMOOTHING = 0.5


def quantized_onnx(tower, export) -> bytes:
    """The int8 ONNX model of ``tower`` (``export(model) -> bytes`` exports a transformer)."""
    logger.info("quantizing the model to int8")
    smoothed = _smoothed_copy(tower.model, tower.tokenizer(list(CALIBRATION_TEXTS)))
    return _quantized(export(smoothed))


class _Rescaled(nn.Module):
    """``linear(x / s)`` with the linear's weight columns multiplied by ``s``: the same output."""

    def __init__(self, linear: nn.Linear, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("inverse", 1 / scale)
        self.linear = linear
        with torch.no_grad():
            linear.weight.mul_(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x * self.inverse)


def _smoothed_copy(model: nn.Module, batch: dict[str, Tensor]) -> nn.Module:
    """A copy of ``model`` whose quantized linears take rescaled inputs (the largest input seen on
    ``batch`` per channel sets the scale)."""
    model = copy.deepcopy(model).cpu().float().eval()
    targets = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear) and not _stays_fp32(m)}
    peaks: dict[str, Tensor] = {}

    def recorder(name: str):
        def record(module, inputs, output) -> None:
            peak = inputs[0].detach().abs().flatten(0, -2).amax(0)
            peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak

        return record

    hooks = [module.register_forward_hook(recorder(name)) for name, module in targets.items()]
    try:
        with torch.inference_mode():
            model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
    for name, linear in targets.items():
        if name not in peaks:  # not on the path to the hidden states (e.g. an unused head)
            continue
        weight_peak = linear.weight.detach().abs().amax(0).clamp_min(1e-5)
        scale = (peaks[name].clamp_min(1e-5) ** SMOOTHING / weight_peak ** (1 - SMOOTHING)).clamp_min(1e-5)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, _Rescaled(linear, scale.clone()))
    return model


def _stays_fp32(linear: nn.Linear) -> bool:
    return linear.in_features > linear.out_features  # a feed-forward down-projection


def _quantized(model: bytes) -> bytes:
    """``model`` with ONNX Runtime's dynamic int8 quantization of its MatMuls, fp32 down-projections kept."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load_from_string(model)
    weights = {initializer.name: tuple(initializer.dims) for initializer in proto.graph.initializer}
    down_projections = [
        node.name
        for node in proto.graph.node
        if node.op_type == "MatMul" and len(weights.get(node.input[1], ())) == 2 and np.greater(*weights[node.input[1]])
    ]
    quiet = _Quiet()  # the quantizer logs advice and per-tensor notes on the root logger
    with tempfile.TemporaryDirectory() as folder, quiet:
        output = Path(folder) / "int8.onnx"
        quantize_dynamic(
            proto,
            output,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            reduce_range=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=down_projections,
        )
        return output.read_bytes()


class _Quiet(logging.Filter):
    """While entered: drops the root logger's records that come from ONNX Runtime's quantizer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    def __enter__(self) -> None:
        logging.getLogger().addFilter(self)

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeFilter(self)
