"""Which tower forward ``encode`` runs: the tower's own (``torch``), ``torch.compile``'s, or ONNX Runtime's."""

from __future__ import annotations

import torch

from sentsim.validation import Choice


class Runtime(Choice):
    """How the tower runs: eager torch, ``torch.compile`` (seconds of warm-up; for long runs), or
    ONNX Runtime (CPU, fp32, padded batches; ``pip install onnxruntime``)."""

    TORCH = "torch"
    COMPILE = "compile"
    ONNX = "onnx"


def check_runtime(
    runtime: Runtime, *, tower_kind: str, devices: list[torch.device], autocast: torch.dtype | None, packed: bool
) -> None:
    """A ValueError naming every setting ``runtime`` cannot run with."""
    if runtime is not Runtime.ONNX:
        return
    if len(devices) > 1:
        raise ValueError("runtime='onnx' runs on one CPU device, not on several")
    if tower_kind != "transformer":
        raise ValueError(f"runtime='onnx' runs transformer towers; this one is a {tower_kind} tower")
    conflicts = {
        f"device={devices[0].type!r}": devices[0].type != "cpu",
        f"dtype={str(autocast).removeprefix('torch.')!r}": autocast is not None,
        "packed=True": packed,
    }
    named = [setting for setting, conflicting in conflicts.items() if conflicting]
    if named:
        raise ValueError(f"runtime='onnx' runs on CPU in fp32 on the padded path, not with {', '.join(named)}")
