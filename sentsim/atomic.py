"""Atomic writes: a reader sees the old content or the new one, never a torn mix.

Files and folders are written under a temporary name beside their target and renamed into
place. A new file or folder gets the permissions a plain ``open`` / ``mkdir`` would give (the
umask applies), not the private ones of :mod:`tempfile`; a replaced file keeps its mode.
Temporaries that killed writes left beside a target (older than ``STALE_SECONDS``) are removed
after the next successful write of that target.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sentsim.inputs import check_flag

try:
    import fcntl
except ImportError:  # Windows: temporaries are judged by age alone
    fcntl = None

logger = logging.getLogger(__name__)

STALE_SECONDS = 3600  # a temporary file or folder this old beside its target, not locked, is a crashed write's
UNLOCKED_STALE_SECONDS = 7 * 24 * 3600  # the same where no lock can tell (Windows, NFS): age alone decides


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file name beside ``path`` that replaces ``path`` when the block succeeds.

    The block writes the file by name (as libraries such as FAISS do); it is fsynced and renamed
    into place. If the block raises, ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if fcntl is None:  # no locks to hold, and Windows cannot rename a file that is open
        os.close(fd)
        fd = None
    else:
        _hold(fd)  # marks the temporary as in use for sweep_stale, until the descriptor closes
    try:
        os.chmod(tmp, _mode_of(path) if path.exists() else 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if fd is not None:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    sweep_stale(path.parent, _temporary_pattern(path.name))


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
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    ready = staging.with_suffix(".ready")
    held = None
    try:
        held = hold(staging)  # marks the staging folder as in use for sweep_stale, however long the block works
        yield staging
        _settle_tree(staging)
        os.chmod(staging, 0o777 & ~_umask())
        os.replace(staging, ready)
        _move_into_place(ready, path)
    finally:
        if held is not None:
            os.close(held)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if ready.exists() and path.exists():  # a failed swap that put the old folder back
            shutil.rmtree(ready, ignore_errors=True)
    for leftover in _leftovers(path):  # of crashes before this write: older than what is in place now
        shutil.rmtree(leftover, ignore_errors=True)
    sweep_stale(path.parent, _temporary_pattern(path.name))  # staging folders of killed writes


def _move_into_place(ready: Path, path: Path) -> None:
    if not path.exists():
        os.replace(ready, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
    os.replace(path, old / "folder")
    try:
        os.replace(ready, path)
    except BaseException:
        os.replace(old / "folder", path)  # if this fails too, both copies stay for recover_folder
        shutil.rmtree(old, ignore_errors=True)
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
    ready = [p for p in found if p.suffix == ".ready"]
    old = [p for p in found if p.suffix == ".old" and (p / "folder").is_dir()]
    chosen = ready[-1] if ready else (old[-1] / "folder" if old else None)
    if chosen is None:
        return False
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
    """The ``.ready`` and ``.old`` folders :func:`atomic_folder` left beside ``path``, oldest first.

    Names are matched exactly (``tempfile``'s random part has no dots), so the leftovers of
    ``model.v2`` are never taken for those of ``model``.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.(ready|old)")
    try:
        found = [entry for entry in path.parent.iterdir() if pattern.fullmatch(entry.name) and entry.is_dir()]
    except OSError:
        return []
    return sorted(found, key=lambda entry: entry.stat().st_mtime)


def sweep_stale(folder: Path, pattern: re.Pattern) -> None:
    """Remove the entries of ``folder`` whose names match ``pattern`` and that are older than
    ``STALE_SECONDS``: temporaries of writes killed before they could clean up (a checkpoint's
    staging folder can hold hundreds of MB). Younger ones may belong to a write in progress, and
    older ones that a live write holds locked (a long one) are kept too. Where locks cannot tell
    (Windows; NFS, whose locks need files open for writing), only ``UNLOCKED_STALE_SECONDS`` of
    age lets a temporary go."""
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                status = entry.lstat()
                if not (stat.S_ISREG(status.st_mode) or stat.S_ISDIR(status.st_mode)):
                    continue  # a link, pipe or device: never one of our temporaries
                age = now - status.st_mtime
                if age < STALE_SECONDS or (_in_use(entry) and age < UNLOCKED_STALE_SECONDS):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                logger.info("removed %s, left by an interrupted write", entry)


def hold(path: str | os.PathLike) -> int | None:
    """Mark the fresh temporary file or folder ``path`` as in use, so that :func:`sweep_stale`
    keeps it however old it gets: the descriptor to close when done (``None`` without locks)."""
    if fcntl is None:  # Windows: age alone decides, and an open file could not be renamed
        return None
    fd = os.open(path, os.O_RDONLY)
    _hold(fd)
    return fd


def _hold(fd: int) -> None:
    """Lock ``fd``'s file or folder (released when ``fd`` closes, or its process dies).

    The temporary is fresh, so nobody else holds it: the lock is taken without waiting. Where it
    cannot be taken (NFS), :func:`_in_use` cannot read it either and age alone decides."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _in_use(entry: Path) -> bool:
    """Whether a live write may hold ``entry`` (see :func:`_hold`): True where no lock can tell."""
    if fcntl is None:
        return True
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False
    except OSError:  # e.g. another user's: cannot tell
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:  # held (EWOULDBLOCK), or locks that need a writable file (NFS: EBADF)
        return True
    finally:
        os.close(fd)


def _temporary_pattern(name: str) -> re.Pattern:
    """Names of the temporaries ``tempfile`` makes for :func:`atomic_file` / :func:`atomic_folder` of ``name``."""
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (other threads may be creating files)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_of(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


def _settle_tree(root: Path) -> None:
    """fsync every file of ``root``, and give files and folders the permissions of a plain write
    (some writers, such as safetensors, create private files). Symbolic links are left alone."""
    files_mode, folders_mode = 0o666 & ~_umask(), 0o777 & ~_umask()
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), folders_mode)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            os.chmod(path, files_mode)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
