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
    runtime: Runtime,
    *,
    tower_kind: str,
    devices: list[torch.device],
    autocast: torch.dtype | None,
    packed: bool,
    int8: bool = False,
) -> None:
    """A ValueError naming every setting ``runtime`` (or ``dtype="int8"``) cannot run with."""
    if runtime is not Runtime.ONNX and not int8:
        return
    what = "dtype='int8'" if int8 else "runtime='onnx'"
    if int8 and runtime is Runtime.COMPILE:
        raise ValueError("dtype='int8' runs on ONNX Runtime; it does not combine with runtime='compile'")
    if len(devices) > 1:
        raise ValueError(f"{what} runs on one CPU device, not on several")
    if tower_kind != "transformer":
        raise ValueError(f"{what} runs transformer towers; this one is a {tower_kind} tower")
    conflicts = {
        f"device={devices[0].type!r}": devices[0].type != "cpu",
        f"dtype={str(autocast).removeprefix('torch.')!r}": autocast is not None,
        "packed=True": packed,
    }
    named = [setting for setting, conflicting in conflicts.items() if conflicting]
    if named:
        precision = "int8" if int8 else "fp32"
        raise ValueError(f"{what} runs on CPU in {precision} on the padded path, not with {', '.join(named)}")
