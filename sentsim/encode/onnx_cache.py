"""ONNX models derived from a tower, cached on disk by the weights they came from.

An export costs seconds and int8 quantization more, in every process that needs them; the cache
keeps each at ``$SENTSIM_CACHE`` (else ``$XDG_CACHE_HOME/sentsim``, ``~/.cache/sentsim``) under
``<variant>/<digest>.onnx``, where the digest covers every parameter and buffer, the recipe of the
variant and the versions of the tools that built it: changed weights (training) never find a
stale file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from sentsim.storage.atomic import atomic_file

logger = logging.getLogger(__name__)

RECIPES = {"fp32": "export-opset17-v1", "int8": "smooth0.5-int8-v1"}  # a changed recipe never reuses a file


def cached_onnx(model: nn.Module, variant: str, build: Callable[[], bytes]) -> bytes:
    """The ``variant`` ONNX model of ``model`` from the cache, or ``build()`` it and cache it."""
    path = cache_folder() / variant / f"{weights_digest(model, variant)}.onnx"
    if path.exists():
        return path.read_bytes()
    logger.info("building the %s ONNX model (once for these weights; cached in %s)", variant, path.parent)
    onnx_model = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as temporary:
        Path(temporary).write_bytes(onnx_model)
    return onnx_model


def cache_folder() -> Path:
    """``$SENTSIM_CACHE``, else ``$XDG_CACHE_HOME/sentsim`` (``~/.cache/sentsim``)."""
    if os.environ.get("SENTSIM_CACHE"):
        return Path(os.environ["SENTSIM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sentsim"


def weights_digest(model: nn.Module, variant: str) -> str:
    """A SHA-256 of the variant's recipe, torch's and ONNX Runtime's versions and every parameter and
    buffer of ``model`` (names, shapes, values)."""
    import onnxruntime

    digest = hashlib.sha256(f"{RECIPES[variant]} torch {torch.__version__} ort {onnxruntime.__version__}".encode())
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {value.dtype} {tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()
