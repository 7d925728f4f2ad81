"""Where encode runs: one device, several, or every visible GPU; model replicas for the extra ones."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

MULTI_GPU_TEXTS = 65536  # from this many texts, encode runs on every visible GPU by default
CACHES = ("_replicas", "_onnx", "_compiled")  # per-encoder caches (in ``__dict__``) a replica does not share


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` that exists here (None: CUDA when available, else CPU).

    Raises a ValueError naming the device for a malformed name, or a GPU this machine lacks.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}; expected cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r} was asked for, but torch here has no CUDA GPU; use cpu")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device {str(device)!r} does not exist: {count} CUDA GPU(s) are visible")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} was asked for, but MPS is not available here; use cpu")
    return resolved


def encode_devices(
    device: str | torch.device | Sequence[str | torch.device] | None, main: torch.device, count: int
) -> list[torch.device]:
    """The devices to encode ``count`` texts on, the model's first: ``device`` as given (one or a
    list), or, by default, the model's device ``main`` plus every other visible GPU for a large
    corpus (at least ``MULTI_GPU_TEXTS`` texts) when the model is on a GPU."""
    if isinstance(device, (list, tuple)):
        if not device:
            raise ValueError("device=[] names no device")
        devices = [resolve_device(one) for one in device]
        if len({one.type for one in devices}) > 1:
            raise ValueError(f"devices must be of one type, got {[str(one) for one in devices]}")
        return devices
    if device is not None:
        return [resolve_device(device)]
    if main.type == "cuda" and torch.cuda.device_count() > 1 and count >= MULTI_GPU_TEXTS:
        return [main, *(torch.device("cuda", i) for i in range(torch.cuda.device_count()) if i != main.index)]
    return [main]


def replica(module: nn.Module, device: torch.device) -> nn.Module:
    """A copy of ``module`` on ``device``, kept in ``module`` for later calls and loaded with its
    current weights each time (so it follows training)."""
    replicas = module.__dict__.setdefault("_replicas", {})
    copied = replicas.get(str(device))
    if copied is None:
        skipped = {id(value): None for key, value in module.__dict__.items() if key in CACHES}
        copied = copy.deepcopy(module, memo=skipped)
        for key in CACHES:
            copied.__dict__.pop(key, None)
        replicas[str(device)] = copied.to(device)
    else:
        copied.load_state_dict(module.state_dict())
    return copied
