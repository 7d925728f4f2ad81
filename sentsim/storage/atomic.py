"""Atomic writes: a reader sees the old content or the new one, never a torn mix.

Files and folders are written under a temporary name beside their target,
``.<name>.<8 random characters>.tmp``, synced and renamed into place. A temporary is created
as a plain ``open`` / ``mkdir`` would create it (the umask applies); a replaced file keeps its
mode. A write holds its temporary locked while it runs; each successful write of a target
removes the temporaries of that target that killed writes left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from sentsim.validation import check_flag

try:
    import fcntl
except ImportError:  # Windows: temporaries are judged by age alone
    fcntl = None

logger = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a temporary this old, not locked, is a killed write's
UNLOCKED_STALE_SECONDS = 7 * 24 * 3600  # the same where no lock can tell (Windows, NFS): age alone decides


class Temporary:
    """A fresh temporary file (or folder) ``.<name>.<8 random characters>.tmp`` beside ``path``,
    created as a plain ``open`` / ``mkdir`` would (the umask applies) and locked until
    :meth:`discard` or :meth:`replace`, so that no sweep removes it however long its write runs."""

    def __init__(self, path: Path, *, folder: bool = False) -> None:
        self.path = path
        self.name = str(path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp"))
        if folder:
            os.mkdir(self.name)
        else:
            os.close(os.open(self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        self._fd = None
        if fcntl is not None:  # without locks age alone decides, and Windows cannot rename an open file
            self._fd = os.open(self.name, os.O_RDONLY)
            with contextlib.suppress(OSError):  # fresh, so free; NFS refuses read-only locks: age decides
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def replace(self) -> None:
        """Sync the written file and rename it over ``path`` (keeping that file's mode)."""
        if self.path.exists():
            os.chmod(self.name, stat.S_IMODE(os.stat(self.path).st_mode))
        _fsync(self.name)
        os.replace(self.name, self.path)
        self.discard()
        _sweep(self.path)

    def discard(self) -> None:
        """Release the lock and remove what is left of the temporary."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if os.path.isdir(self.name):
            shutil.rmtree(self.name, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` that replaces ``path`` when the block succeeds.

    The block writes the file by name (as libraries such as FAISS do). If it raises, ``path`` is
    left as it was.
    """
    temporary = Temporary(Path(path))
    try:
        yield temporary.name
        temporary.replace()
    finally:
        temporary.discard()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``path`` when the block succeeds.

    If the block raises, ``path`` is left exactly as it was. The finished folder is first
    renamed ``.<name>.<random>.ready``; an existing ``path`` is then moved aside
    (``.<name>.<random>.old``), the ready folder renamed into place, and only then the old one
    deleted. A crash between those two renames leaves no ``path``: :func:`recover_folder`
    (called here before each write, and by readers that care) puts the ready folder, or else
    the old one, back. After a successful write, leftovers of earlier crashes are removed.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    temporary = Temporary(path, folder=True)
    staging = Path(temporary.name)
    ready = staging.with_suffix(".ready")
    try:
        yield staging
        _settle_tree(staging)
        os.replace(staging, ready)
        _move_into_place(ready, path)
    finally:
        temporary.discard()
        if ready.exists() and path.exists():  # a failed swap that put the old folder back
            shutil.rmtree(ready, ignore_errors=True)
    for leftover in _leftovers(path):  # of crashes before this write: older than what is in place now
        shutil.rmtree(leftover, ignore_errors=True)
    _sweep(path)


def _move_into_place(ready: Path, path: Path) -> None:
    if not path.exists():
        os.replace(ready, path)
        return
    old = ready.with_suffix(".old")
    os.replace(path, old)
    try:
        os.replace(ready, path)
    except BaseException:
        os.replace(old, path)  # if this fails too, both copies stay for recover_folder
        raise
    shutil.rmtree(old, ignore_errors=True)


def holds_other_files(path: str | os.PathLike, markers: tuple[str, ...]) -> bool:
    """Whether ``path`` is a non-empty folder holding none of ``markers``: replacing it would lose files."""
    path = Path(path)
    return path.is_dir() and any(path.iterdir()) and not any((path / marker).exists() for marker in markers)


def check_replaceable(path: str | os.PathLike, markers: tuple[str, ...], what: str, *, overwrite: bool) -> None:
    """Before a save that replaces the whole folder ``path``: refuse a non-empty folder holding
    none of ``markers`` (files such a save writes) unless ``overwrite``, so that no user files go."""
    if check_flag("overwrite", overwrite) or not holds_other_files(path, markers):
        return
    raise FileExistsError(
        f"{path} holds files that are not a saved {what}, and saving replaces the whole folder: "
        "choose a new or empty folder, or pass overwrite=True"
    )


def recover_folder(path: str | os.PathLike) -> bool:
    """Put back a folder that a crash inside :func:`atomic_folder` left missing; True if it did.

    The newest finished (``.ready``) copy wins; without one, the newest copy that was being
    replaced (``.old``) comes back. The other leftovers of that name are then removed. A folder
    that cannot be put back (read-only storage) is logged and left as it is.
    """
    path = Path(path).absolute()
    if path.exists() or not path.parent.is_dir():
        return False
    found = _leftovers(path)
    if not found:
        return False
    chosen = ([p for p in found if p.suffix == ".ready"] or found)[-1]
    try:
        os.replace(chosen, path)
    except OSError as error:
        logger.warning("%s is missing after an interrupted write; %s could not be put back: %s", path, chosen, error)
        return False
    logger.warning("%s was missing after an interrupted write; restored it from %s", path, chosen)
    for leftover in _leftovers(path):
        shutil.rmtree(leftover, ignore_errors=True)
    return True


def _leftovers(path: Path) -> list[Path]:
    """The ``.ready`` and ``.old`` folders :func:`atomic_folder` left beside ``path``, oldest first."""
    pattern = _temporaries_of(path.name, "ready|old")
    found = [entry for entry in path.parent.iterdir() if pattern.fullmatch(entry.name) and entry.is_dir()]
    return sorted(found, key=lambda entry: entry.stat().st_mtime)


def _sweep(path: Path) -> None:
    """Remove the temporaries of ``path`` that killed writes left (a checkpoint's staging folder
    can hold hundreds of MB): those older than ``STALE_SECONDS`` that no live write holds locked.
    Where locks cannot tell (Windows; NFS, whose locks need files open for writing), only
    ``UNLOCKED_STALE_SECONDS`` of age lets a temporary go. Links, pipes and devices are never ours."""
    pattern = _temporaries_of(path.name, "tmp")
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                status = entry.lstat()
                if not (stat.S_ISREG(status.st_mode) or stat.S_ISDIR(status.st_mode)):
                    continue
                age = now - status.st_mtime
                if age < STALE_SECONDS or (_in_use(entry) and age < UNLOCKED_STALE_SECONDS):
                    continue
                if stat.S_ISDIR(status.st_mode):
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                logger.info("removed %s, left by an interrupted write", entry)


def _in_use(entry: Path) -> bool:
    """Whether a live write may hold ``entry`` locked (see :class:`Temporary`): True where no lock can tell."""
    if fcntl is None:
        return True
    try:
        fd = os.open(entry, os.O_RDONLY)
    except OSError:  # gone, or another user's: cannot tell
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:  # held (EWOULDBLOCK), or locks that need a writable file (NFS: EBADF)
        return True
    finally:
        os.close(fd)


def _temporaries_of(name: str, kinds: str) -> re.Pattern:
    """Names of the temporaries of ``name`` whose last part is one of ``kinds`` (``a|b``), matched
    exactly, so that those of ``model.v2`` are never taken for those of ``model``."""
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.({kinds})")


def _fsync(path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _settle_tree(root: Path) -> None:
    """fsync every file of ``root``, and give files and folders the permissions of a plain write,
    which ``root`` itself has (some writers, such as safetensors, create private files).
    Symbolic links are left alone."""
    folders_mode = stat.S_IMODE(os.stat(root).st_mode) & 0o777
    files_mode = folders_mode & 0o666
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), folders_mode)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            os.chmod(path, files_mode)
            _fsync(path)
