"""Where ``encode`` puts embeddings: a tensor on the device, or a ``.npy`` file written atomically.

A file is streamed into a temporary beside the target (memory-mapped, chunk by chunk), then
flushed and put in place as :func:`sentsim.storage.atomic.atomic_file` does; on any failure the
temporary and the folders made for it are removed and an existing file at the target is left
as it was.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sentsim.storage.atomic import Temporary


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
    """Embeddings streamed into a memory-mapped :class:`~sentsim.storage.atomic.Temporary` that replaces
    ``path`` once complete."""

    def __init__(self, path: str | Path, rows: int, dim: int) -> None:
        self.path = check_npy_path(path)
        self.created = [folder for folder in (self.path.parent, *self.path.parent.parents) if not folder.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.target = None
        try:
            self.temporary = Temporary(self.path)
            self.target = np.lib.format.open_memmap(self.temporary.name, mode="w+", dtype=np.float32, shape=(rows, dim))
        except BaseException:  # e.g. no space for the file
            self.discard()
            raise

    def write(self, start: int, block: Tensor) -> None:
        self.target[start : start + len(block)] = block.cpu().numpy()

    def finish(self) -> np.memmap:
        """Flush, sync and rename into place; the finished file, memory-mapped read-only."""
        self.target.flush()
        self.target = None
        self.temporary.replace()
        return np.load(self.path, mmap_mode="r")

    def discard(self) -> None:
        """Remove the temporary file and the (then empty) folders made for it."""
        self.target = None
        if self.temporary is not None:
            self.temporary.discard()
        for folder in self.created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_npy_path(path: str | Path) -> Path:
    """``path`` as a Path, or an error unless it names a ``.npy`` file (not a folder)."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"output must be a .npy file path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise ValueError(f"output must be a .npy file, got {path}")
    if path.is_dir():
        raise IsADirectoryError(f"output {path} is a folder; give a .npy file path")
    return path
