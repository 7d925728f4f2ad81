"""Precision of a forward pass: the one table from ``"fp32" | "bf16" | "fp16"`` to an autocast dtype."""

from __future__ import annotations

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


def autocast_dtype(precision: str | Precision | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (``None``: bf16 on a CUDA GPU that supports it, else fp32)."""
    if precision is None:
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return Precision.parse(precision, "dtype").autocast
