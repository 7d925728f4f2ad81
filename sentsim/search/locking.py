"""Locks: a readers-writer lock (many searches at once, or one write) and a lock file shared by
every handle and process on one index folder."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = "index.lock"  # in an index folder: taken around each write
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a link swapped in after the check above is not followed either


class ReadWriteLock:
    """Many readers or one writer."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            while self._writer:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        acquired = False
        try:  # an interrupt anywhere after the flag is set still releases it
            with self._condition:
                while self._writer or self._readers:
                    self._condition.wait()
                acquired = True
                self._writer = True
            yield
        finally:
            if acquired:
                with self._condition:
                    self._writer = False
                    self._condition.notify_all()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing), between processes and between handles
    of one process; not re-entrant. The file is opened read-only, so users who may only search can
    lock it too; where it cannot be opened at all (a read-only folder: nobody writes) or ``fcntl``
    is missing (Windows), it does not lock. A symbolic link is refused, not followed."""
    if os.path.islink(path):
        raise OSError(f"{path} is a symbolic link; an index keeps its own lock file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | NO_FOLLOW, 0o666)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY | NO_FOLLOW)
        except OSError as error:
            if error.errno == errno.ELOOP:  # a link swapped in since the check above
                raise OSError(f"{path} is a symbolic link; an index keeps its own lock file") from None
            yield
            return
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
