"""Embeddings streamed to a ``.npy`` file: a staging file beside the target, renamed into place."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path


def discard_staging(staging: Path, created: list[Path]) -> None:
    """Remove a staging file and the (then empty) folders made for it."""
    staging.unlink(missing_ok=True)
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def staging_path(path: Path) -> tuple[Path, list[Path]]:
    """A temporary ``.npy`` beside ``path`` (embeddings stream into it, then it replaces ``path``
    atomically), and the folders made for it, deepest first (removed again if encoding fails)."""
    if path.suffix.lower() != ".npy":
        raise ValueError(f"output must be a .npy file, got {path}")
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a folder; give a .npy file path")
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp.npy"), created
