"""Input files as a Ray Data ``Dataset``: Parquet or JSON Lines, one file or a folder of them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sentsim.distributed.runtime import require_ray
from sentsim.validation import check_path

if TYPE_CHECKING:
    import ray.data

FORMATS = {".parquet": "Parquet", ".jsonl": "JSON Lines"}


def read_dataset(source: str | os.PathLike) -> ray.data.Dataset:
    """A lazy Dataset of ``source``: a ``.parquet`` or ``.jsonl`` file, or a folder of either
    (read recursively; other files, and names starting with ``.`` or ``_``, are skipped).

    On a cluster of several machines every node reads its share, so ``source`` must be at the
    same path on each (shared storage). Raises FileNotFoundError for a missing path and a
    ValueError for a file or folder of another kind.
    """
    ray = require_ray()
    path = check_path("source", source).absolute()  # workers do not share this process's working folder
    suffix = _suffix(path)
    if suffix == ".parquet":
        return ray.data.read_parquet(str(path), file_extensions=["parquet"])
    return ray.data.read_json(str(path), file_extensions=["jsonl"])


def _suffix(path: Path) -> str:
    """``.parquet`` or ``.jsonl``: the kind of the file, or of the files in the folder."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    expected = " or ".join(f"{name} ({suffix})" for suffix, name in FORMATS.items())
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise ValueError(f"{path}: expected {expected}, got a {path.suffix or 'file without a suffix'}")
        return path.suffix.lower()
    found = {
        file.suffix.lower()
        for file in path.rglob("*")
        if file.is_file() and not file.name.startswith((".", "_")) and file.suffix.lower() in FORMATS
    }
    if len(found) != 1:
        what = "both kinds" if found else "neither"
        raise ValueError(f"{path}: a folder of {expected} files is expected; it holds {what}")
    return found.pop()
