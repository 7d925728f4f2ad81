"""Precision of a forward pass: the one table from ``"fp32" | "bf16" | "fp16"`` to an autocast dtype."""

from __future__ import annotations

import functools
import warnings

import torch

from sentsim.validation import Choice


class Precision(Choice):
    """Numeric precision of the model's forward (outputs are float32 either way)."""

    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"

    @property
    def autocast(self) -> torch.dtype | None:
        """The autocast dtype, or None for fp32 (no autocast)."""
        return {Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[self]


def best_gpu_precision() -> Precision:
    """bf16 where the CUDA GPU supports it, else fp16."""
    return Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP16


@functools.cache
def cpu_computes(precision: Precision) -> bool:
    """Whether this CPU computes ``precision`` natively (bf16: AVX-512 bf16 or AMX; fp16: AVX-512 fp16
    or AMX fp16), rather than emulating it several times slower than fp32."""
    if precision is Precision.FP32:
        return True
    probe = (
        torch.ops.mkldnn._is_mkldnn_bf16_supported
        if precision is Precision.BF16
        else torch.ops.mkldnn._is_mkldnn_fp16_supported
    )
    return bool(probe())


def autocast_dtype(precision: str | Precision | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (``None``: bf16 on a CUDA GPU that supports it, else fp32).

    On a CPU that would only emulate bf16 / fp16 (no AVX-512 bf16 / fp16 or AMX: e.g. AMD Zen 3,
    Intel before Cooper Lake), where it runs many times slower than fp32, the forward runs in fp32 with a
    warning: the output is float32 either way.
    """
    if precision is None:
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    precision = Precision.parse(precision, "dtype")
    if device.type == "cpu" and not cpu_computes(precision):
        warnings.warn(
            f"dtype={precision.value!r}: this CPU has no native {precision.value} arithmetic (AVX-512 "
            f"{precision.value} or AMX) and would emulate it many times slower than fp32; running in fp32",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return precision.autocast
