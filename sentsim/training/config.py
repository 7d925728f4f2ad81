"""Training settings: a small frozen dataclass."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from sentsim.inputs import is_integer, positive_int

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How to train.

    Attributes:
        epochs: passes over the data.
        batch_size: examples per step over all processes (under DDP each rank takes an equal share).
        learning_rate: peak AdamW learning rate, reached after warm-up, then decayed linearly to 0.
        warmup_ratio: share of the optimizer steps spent warming up.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        gradient_accumulation: batches per optimizer step.
        max_grad_norm: clip the gradient norm to this (None: no clipping).
        precision: ``auto`` (bf16 on a CUDA GPU that supports it, else fp16 on CUDA, fp32 on CPU),
            ``fp32``, ``bf16`` or ``fp16`` (autocast; fp16 with a gradient scaler).
        seed: seeds the data order and dropout, so a CPU run is reproducible.
        eval_steps: evaluate every this many optimizer steps (and always at each epoch end).
        checkpoint_steps: write a checkpoint every this many optimizer steps (and at each epoch end).
        early_stopping_patience: stop after this many evaluations without a better primary metric.
        log_steps: log the running loss every this many optimizer steps.
        show_progress: a progress bar with the running loss.
    """

    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    gradient_accumulation: int = 1
    max_grad_norm: float | None = 1.0
    precision: str = "auto"
    seed: int = 0
    eval_steps: int | None = None
    checkpoint_steps: int | None = None
    early_stopping_patience: int | None = None
    log_steps: int = 10
    show_progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "gradient_accumulation", "log_steps", "seed"):
            if not is_integer(getattr(self, name)):
                raise TypeError(f"{name} must be an int, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "gradient_accumulation", "log_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_steps", "checkpoint_steps", "early_stopping_patience"):
            positive_int(name, getattr(self, name), optional=True)
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0 or not 0 <= self.warmup_ratio < 1:
            raise ValueError(
                f"need learning_rate > 0 and 0 <= warmup_ratio < 1, got {self.learning_rate}, {self.warmup_ratio}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
