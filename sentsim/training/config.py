"""Training settings: a small frozen dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sentsim.encode.precision import Precision
from sentsim.validation import check_choice, check_flag, check_int, is_real, positive_number

PRECISIONS = ("auto", *(precision.value for precision in Precision))  # auto: bf16 (or fp16) on CUDA, fp32 elsewhere


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
        packed: run each batch's texts end to end without padding (variable-length attention);
            None: on CUDA with bf16/fp16 where the tower supports it (BERT/RoBERTa family), as
            ``encode`` does. Equal to the padded forward up to float rounding.
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
    packed: bool | None = None

    def __post_init__(self) -> None:
        # each number is checked, then stored as a plain int / float: the config is written to run.json
        for name in ("epochs", "batch_size", "gradient_accumulation", "log_steps"):
            self._store(name, check_int(name, getattr(self, name), minimum=1))
        self._store("seed", check_int("seed", self.seed))
        for name in ("eval_steps", "checkpoint_steps", "early_stopping_patience"):
            self._store(name, check_int(name, getattr(self, name), optional=True, minimum=1))
        self._store("learning_rate", positive_number("learning_rate", self.learning_rate))
        if not is_real(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be a number in [0, 1), got {self.warmup_ratio!r}")
        self._store("warmup_ratio", float(self.warmup_ratio))
        self._store("weight_decay", positive_number("weight_decay", self.weight_decay, allow_zero=True))
        if self.max_grad_norm is not None:
            self._store("max_grad_norm", positive_number("max_grad_norm", self.max_grad_norm))
        self._store("show_progress", check_flag("show_progress", self.show_progress))
        self._store("packed", check_flag("packed", self.packed, optional=True))
        check_choice("precision", self.precision, PRECISIONS)

    def _store(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)  # the dataclass is frozen

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
