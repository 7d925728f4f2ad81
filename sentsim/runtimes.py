"""Which tower forward ``encode`` runs: the tower's own, ``torch.compile``'s, or ONNX Runtime's.

The compiled and exported forwards are built once per encoder and cached in its ``__dict__``
(``_compiled``, ``_onnx``; see ``devices.CACHES``): ``torch.compile`` costs seconds of warm-up,
an ONNX export seconds more, and the export is redone only after the weights change.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

RUNTIMES = ("torch", "onnx")


def tower_forward(
    encoder: nn.Module,
    *,
    runtime: str,
    device: torch.device,
    autocast: torch.dtype | None,
    packed: bool,
    compile: bool,
) -> Callable | None:
    """The forward to run ``encoder``'s tower with (``None``: the tower's own)."""
    if runtime == "onnx":
        return _onnx_forward(encoder, device, autocast, packed, compile)
    return _compiled_forward(encoder, packed) if compile else None


def _onnx_forward(
    encoder: nn.Module, device: torch.device, autocast: torch.dtype | None, packed: bool, compile: bool
) -> Callable:
    """The tower's forward through ONNX Runtime, exported once and again after the weights change."""
    from sentsim.towers.onnx import OnnxForward
    from sentsim.towers.transformer import TransformerTower

    if not isinstance(encoder.tower, TransformerTower):
        raise ValueError(f"runtime='onnx' runs transformer towers; this one is a {encoder.tower.kind} tower")
    conflicts = {
        f"device={device.type!r}": device.type != "cpu",
        f"dtype={str(autocast).removeprefix('torch.')!r}": autocast is not None,
        "packed=True": packed,
        "compile=True": compile,
    }
    named = [setting for setting, conflicting in conflicts.items() if conflicting]
    if named:
        raise ValueError(f"runtime='onnx' runs on CPU in fp32 on the padded path, not with {', '.join(named)}")
    cached = encoder.__dict__.get("_onnx")
    if cached is None or not cached.is_current():
        cached = encoder.__dict__["_onnx"] = OnnxForward(encoder.tower)
    return cached


def _compiled_forward(encoder: nn.Module, packed: bool) -> Callable:
    """The tower's (packed or padded) forward through ``torch.compile``, compiled once per encoder."""
    cache = encoder.__dict__.setdefault("_compiled", {})
    if packed not in cache:
        cache[packed] = torch.compile(encoder.tower.forward_packed if packed else encoder.tower, dynamic=True)
    return cache[packed]
