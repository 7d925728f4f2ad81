"""Where ``encode`` puts embeddings: a tensor on the device, or a ``.npy`` file written atomically.

A file is streamed into a staging ``.npy`` beside the target (memory-mapped, chunk by chunk),
flushed, synced and renamed into place; on any failure the staging file and the folders made
for it are removed and an existing file at the target is left as it was. Staging files that
killed runs left beside the target are removed after a later successful write.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sentsim.atomic import hold, sweep_stale


class TensorOutput:
    """Embeddings collected in one float32 tensor on ``device``."""

    def __init__(self, rows: int, dim: int, device: torch.device) -> None:
        self.embeddings = torch.empty((rows, dim), dtype=torch.float32, device=device)

    def write(self, start: int, block: Tensor) -> None:
        self.embeddings[start : start + len(block)] = block.to(self.embeddings.device)

    def finish(self) -> Tensor:
        return self.embeddings

    def discard(self) -> None:
        pass


class NpyOutput:
    """Embeddings streamed into a memory-mapped ``.npy`` that replaces ``path`` once complete."""

    def __init__(self, path: str | Path, rows: int, dim: int) -> None:
        self.path = Path(path)
        self.staging, self.created = staging_path(self.path)
        self.held = None
        try:
            self.target = np.lib.format.open_memmap(self.staging, mode="w+", dtype=np.float32, shape=(rows, dim))
            self.held = hold(self.staging)  # kept from other encodes' sweeps however long this one runs
        except BaseException:  # e.g. no space for the file
            self.discard()
            raise

    def write(self, start: int, block: Tensor) -> None:
        self.target[start : start + len(block)] = block.cpu().numpy()

    def finish(self) -> np.memmap:
        """Flush, sync and rename into place; the finished file, memory-mapped read-only."""
        self.target.flush()
        self.target = None
        with open(self.staging, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.staging, self.path)
        self._release()
        stem = re.escape(self.path.stem)
        sweep_stale(self.path.parent, re.compile(rf"\.{stem}\.[0-9a-f]{{32}}\.tmp\.npy"))  # of killed encodes
        return np.load(self.path, mmap_mode="r")

    def discard(self) -> None:
        """Remove the staging file and the (then empty) folders made for it."""
        self.target = None
        self._release()
        self.staging.unlink(missing_ok=True)
        for folder in self.created:
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _release(self) -> None:
        if self.held is not None:
            os.close(self.held)
            self.held = None


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
