"""Atomic writes: a reader sees the old content or the new one, never a torn mix.

Files and folders are written under a temporary name beside their target and renamed into
place. They get the permissions a plain ``open`` / ``mkdir`` would give (the umask applies),
not the private ones of :mod:`tempfile`.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` that replaces ``path`` when the block succeeds.

    The block writes the file by name (as libraries such as FAISS do); it is fsynced and renamed
    into place. If the block raises, ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``path`` when the block succeeds.

    If the block raises, ``path`` is left exactly as it was. The finished folder is first
    renamed ``.<name>.<random>.ready``; an existing ``path`` is then moved aside, the ready
    folder renamed into place, and only then the old one deleted. A crash between those two
    renames leaves no ``path``: :func:`recover_folder` (called here before each write, and by
    readers that care) puts the ready folder, or else the old one, back.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    ready = staging.with_suffix(".ready")
    try:
        yield staging
        _settle_tree(staging)
        os.chmod(staging, 0o777 & ~_UMASK)
        os.replace(staging, ready)
        _move_into_place(ready, path)
    finally:
        for leftover in (staging, ready):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def _move_into_place(ready: Path, path: Path) -> None:
    if not path.exists():
        os.replace(ready, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.replace(path, old / "folder")
    try:
        os.replace(ready, path)
    except BaseException:
        os.replace(old / "folder", path)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def recover_folder(path: str | os.PathLike) -> bool:
    """Put back a folder that a crash inside :func:`atomic_folder` left missing; True if it did.

    The newest finished (``.ready``) copy wins; without one, the copy that was being replaced
    (``.old``) comes back. Leftovers of the interrupted write are removed once ``path`` exists.
    """
    path = Path(path).absolute()
    if path.exists() or not path.parent.is_dir():
        return False
    name = glob.escape(path.name)
    ready = sorted(path.parent.glob(f".{name}.*.ready"), key=lambda p: p.stat().st_mtime)
    old = [p / "folder" for p in path.parent.glob(f".{name}.*.old") if (p / "folder").is_dir()]
    candidates = ready[-1:] or old[-1:]
    if not candidates:
        return False
    os.replace(candidates[0], path)
    logger.warning("%s was missing after an interrupted write; restored it from %s", path, candidates[0])
    for leftover in [*ready[:-1], *(p.parent for p in old)]:
        shutil.rmtree(leftover, ignore_errors=True)
    return True


def _settle_tree(root: Path) -> None:
    """fsync every file of ``root``, and give files and folders the permissions of a plain write
    (some writers, such as safetensors, create private files)."""
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            os.chmod(os.path.join(folder, name), 0o777 & ~_UMASK)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, 0o666 & ~_UMASK)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
