"""Checkpoints without pickle: tensors in safetensors, everything else in JSON, written atomically.

A checkpoint folder holds ``encoder.safetensors`` (the encoder's state dict),
``optimizer.safetensors`` (the optimizer's tensors), ``rng.safetensors`` (torch RNG states)
and ``state.json`` (optimizer hyper-parameters, scheduler, gradient scaler, data position,
best metric, and the run's fingerprint).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from sentsim.storage.atomic import atomic_folder
from sentsim.storage.formats import read_versioned
from sentsim.storage.weights import load_safetensors, save_safetensors

STATE_FILE = "state.json"
CHECKPOINT_FORMAT = 1  # of state.json; any other is refused


@dataclass
class TrainState:
    """Where training stands: the next batch to run, and the best evaluation so far."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evaluations_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)


def save_checkpoint(
    folder: Path, *, model: nn.Module, optimizer, scheduler, scaler, state: TrainState, run: dict
) -> None:
    optimizer_state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in optimizer_state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng |= {f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    data = {
        "format": CHECKPOINT_FORMAT,
        "run": run,
        "train_state": asdict(state),
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
    }
    with atomic_folder(folder) as staging:
        save_safetensors(model.state_dict(), staging / "encoder.safetensors")
        save_safetensors(tensors or {"_empty": torch.zeros(0)}, staging / "optimizer.safetensors")
        save_safetensors(rng, staging / "rng.safetensors")
        (staging / STATE_FILE).write_text(json.dumps(data, default=_json_default) + "\n", encoding="utf-8")


def read_checkpoint_run(folder: Path) -> dict:
    """The fingerprint of the run that wrote the checkpoint in ``folder``."""
    return _read_state(folder)["run"]


def load_checkpoint(folder: Path, *, model: nn.Module, optimizer, scheduler, scaler) -> TrainState:
    """Restore everything :func:`save_checkpoint` wrote; returns the training state."""
    data = _read_state(folder)
    model.load_state_dict(load_safetensors(folder / "encoder.safetensors"))
    tensors = load_safetensors(folder / "optimizer.safetensors")
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key != "_empty":
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in data["optimizer"]["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = data["optimizer"]["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    scheduler.load_state_dict(data["scheduler"])
    if scaler is not None and data["scaler"] is not None:
        scaler.load_state_dict(data["scaler"])
    rng = load_safetensors(folder / "rng.safetensors")
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        cuda_states = [rng[f"cuda{i}"] for i in range(torch.cuda.device_count()) if f"cuda{i}" in rng]
        if cuda_states:
            torch.cuda.set_rng_state_all(cuda_states)
    return TrainState(**data["train_state"])


def _read_state(folder: Path) -> dict:
    """``state.json``, refused unless it is a checkpoint of this format."""
    return read_versioned(folder / STATE_FILE, CHECKPOINT_FORMAT, "checkpoint")


def _json_default(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint")
