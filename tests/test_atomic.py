"""Atomic writes: permissions like a plain write, and folders put back after a crash mid-swap."""

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sentsim.storage.atomic import atomic_file, atomic_folder, recover_folder, write_text_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions and renames")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_and_folders_get_the_permissions_of_a_plain_write(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    write_text_atomic(tmp_path / "file.txt", "x")
    with atomic_file(tmp_path / "binary.bin") as name, open(name, "wb") as handle:
        handle.write(b"x")
    with atomic_folder(tmp_path / "folder") as staging:
        (staging / "inside.txt").write_text("x")
    assert _mode(tmp_path / "file.txt") == _mode(tmp_path / "binary.bin") == _mode(tmp_path / "plain.txt")
    assert _mode(tmp_path / "folder") == _mode(tmp_path / "plain")  # not tempfile's private 0o700
    assert _mode(tmp_path / "folder" / "inside.txt") == _mode(tmp_path / "plain.txt")


@pytest.fixture
def umask():
    """Run a test under a given umask (the one set when sentsim writes is the one that counts)."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


def test_model_folders_follow_the_umask_at_the_time_of_the_write(tmp_path, tiny_transformer, umask):
    from sentsim import SentenceEncoder

    for mask, folder_mode, file_mode in ((0o022, 0o755, 0o644), (0o077, 0o700, 0o600)):
        umask(mask)
        SentenceEncoder(tiny_transformer).save_pretrained(tmp_path / f"model{mask}")
        assert _mode(tmp_path / f"model{mask}") == folder_mode
        assert _mode(tmp_path / f"model{mask}" / "model.safetensors") == file_mode  # safetensors writes 0o600


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    write_text_atomic(tmp_path / "secret.json", "{}")
    os.chmod(tmp_path / "secret.json", 0o600)
    write_text_atomic(tmp_path / "secret.json", '{"a": 1}')
    assert _mode(tmp_path / "secret.json") == 0o600


def _killed_between_the_renames(target) -> None:
    """Replace ``target`` in another process that dies (like a SIGKILL) after moving the old folder aside."""
    script = textwrap.dedent(
        """
        import os, sys
        import sentsim.storage.atomic as atomic
        real = os.replace
        def replace(source, destination):
            if str(destination).endswith(".old"):  # the old folder goes aside ...
                real(source, destination)
                os._exit(9)  # ... and the process dies before the new one moves in
            real(source, destination)
        atomic.os.replace = replace
        with atomic.atomic_folder(sys.argv[1]) as staging:
            (staging / "weights").write_text("new")
        """
    )
    finished = subprocess.run([sys.executable, "-c", script, str(target)])
    assert finished.returncode == 9


def test_leftovers_of_a_sibling_whose_name_extends_this_one_are_not_taken(tmp_path):
    with atomic_folder(tmp_path / "model.v2") as staging:
        (staging / "weights").write_text("v2")
    _killed_between_the_renames(tmp_path / "model.v2")
    for ready in tmp_path.glob(".model.v2.*.ready"):
        ready.rename(ready.with_suffix(".tmp"))  # only the old copy of model.v2 is left
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "weights").write_text("model")
    assert (tmp_path / "model" / "weights").read_text() == "model"
    assert recover_folder(tmp_path / "model.v2")
    assert (tmp_path / "model.v2" / "weights").read_text() == "v2"


def test_a_folder_lost_between_the_two_renames_is_put_back_with_the_new_content(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "weights").write_text("old")
    _killed_between_the_renames(target)
    assert not target.exists()
    assert recover_folder(target)
    assert (target / "weights").read_text() == "new"  # it had been written in full
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no leftovers
    assert not recover_folder(target)
    _killed_between_the_renames(target)
    for ready in tmp_path.glob(".model.*.ready"):  # a crash leaves the old copy aside ...
        ready.rename(ready.with_suffix(".tmp"))
    recover_folder(target)
    with atomic_folder(target) as staging:  # ... and the next successful write removes the leftovers
        (staging / "weights").write_text("newest")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")) == ["model"]


def test_without_a_finished_copy_the_old_folder_comes_back(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "weights").write_text("old")
    _killed_between_the_renames(target)
    for ready in tmp_path.glob(".model.*.ready"):  # as if the crash came before the new folder was finished
        ready.rename(ready.with_suffix(".tmp"))
    with atomic_folder(target) as staging:  # the next write puts the old folder back before replacing it
        assert (target / "weights").read_text() == "old"
        (staging / "weights").write_text("newer")
    assert (target / "weights").read_text() == "newer"


def test_loading_a_model_puts_back_the_folder_a_crash_left_aside(tmp_path, tiny_transformer):
    from sentsim import SentenceEncoder

    encoder = SentenceEncoder(tiny_transformer)
    encoder.save_pretrained(tmp_path / "model")
    aside = tmp_path / ".model.k3j2x8q1.old"  # what a crash between the renames leaves, without a finished copy
    (tmp_path / "model").rename(aside)
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    np.testing.assert_allclose(loaded.encode(["a cat sleeps"]), encoder.encode(["a cat sleeps"]), atol=1e-6)


def test_a_failed_swap_leaves_the_old_folder_in_place(tmp_path, monkeypatch):
    import sentsim.storage.atomic as atomic

    target = tmp_path / "model"
    with atomic_folder(target) as staging:
        (staging / "weights").write_text("old")
    real = os.replace

    def refuse_the_second_rename(source, destination):
        if str(source).endswith(".ready") and str(destination) == str(target):
            raise PermissionError("no")
        real(source, destination)

    monkeypatch.setattr(atomic.os, "replace", refuse_the_second_rename)
    with pytest.raises(PermissionError), atomic_folder(target) as staging:
        (staging / "weights").write_text("new")
    assert (target / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_temporaries_of_killed_writes_are_swept_after_a_later_write(tmp_path, tiny_encoder):
    """A write killed before its cleanup leaves a temporary beside the target; the next successful
    write of that target removes those older than STALE_SECONDS, and nothing else."""
    old = [
        tmp_path / ".index.faiss.abcd1234.tmp",  # atomic_file
        tmp_path / ".model.k3y_9zzz.tmp",  # atomic_folder staging (a folder)
        tmp_path / ".out.npy.abcd1234.tmp",  # encode(output=)
    ]
    kept = [
        tmp_path / ".index.faiss.fresh123.tmp",  # young: may be a write in progress
        tmp_path / ".model.v2.abcd1234.tmp",  # another target's
        tmp_path / "notes.tmp",
    ]
    old[1].mkdir()
    (old[1] / "model.safetensors").write_bytes(b"x" * 100)
    for path in [old[0], old[2], *kept]:
        path.write_bytes(b"x")
    hour_ago = os.stat(tmp_path).st_mtime - 3700
    for path in [*old, kept[1], kept[2]]:
        os.utime(path, (hour_ago, hour_ago))
    with atomic_file(tmp_path / "index.faiss") as name, open(name, "wb") as handle:
        handle.write(b"x")
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "inside.txt").write_text("x")
    tiny_encoder.encode(["a text"] * 3, output=tmp_path / "out.npy")
    assert not any(path.exists() for path in old)
    assert all(path.exists() for path in kept)


def test_a_long_write_in_progress_is_not_swept(tmp_path):
    """A write that has worked for over STALE_SECONDS holds its temporary locked: a concurrent write
    of the same target that finishes first leaves it alone, and the long write still lands."""
    long_ago = os.stat(tmp_path).st_mtime - 7200
    with atomic_folder(tmp_path / "model") as slow:
        (slow / "weights").write_text("slow")
        os.utime(slow, (long_ago, long_ago))
        with atomic_folder(tmp_path / "model") as fast:
            (fast / "weights").write_text("fast")
        assert slow.is_dir()
    assert (tmp_path / "model" / "weights").read_text() == "slow"
    with atomic_file(tmp_path / "index.faiss") as slow_name:
        with open(slow_name, "wb") as handle:
            handle.write(b"slow")
        os.utime(slow_name, (long_ago, long_ago))
        write_text_atomic(tmp_path / "index.faiss", "fast")
        assert os.path.exists(slow_name)
    assert (tmp_path / "index.faiss").read_bytes() == b"slow"


def test_a_long_encode_to_a_file_is_not_swept_by_another_that_finishes(tmp_path, tiny_encoder):
    """encode(output=) holds its temporary file locked: an encode of the same path that finishes
    while it is still streaming (after over STALE_SECONDS) leaves it alone, and it still lands."""
    from sentsim.encode.outputs import NpyOutput

    slow = NpyOutput(tmp_path / "out.npy", rows=2, dim=3)
    long_ago = os.stat(tmp_path).st_mtime - 7200
    os.utime(slow.temporary.name, (long_ago, long_ago))
    tiny_encoder.encode(["a text"], output=tmp_path / "out.npy")
    assert os.path.exists(slow.temporary.name)
    import torch

    slow.write(0, torch.ones(2, 3))
    assert np.array_equal(slow.finish(), np.ones((2, 3), dtype=np.float32))


def test_a_pipe_named_like_a_temporary_is_neither_opened_nor_removed(tmp_path):
    """Sweeping never blocks on a FIFO (opening one for reading waits for a writer) nor deletes
    anything that is not a plain file or folder."""
    fifo = tmp_path / ".index.faiss.abcd1234.tmp"
    os.mkfifo(fifo)
    hour_ago = os.stat(tmp_path).st_mtime - 3700
    os.utime(fifo, (hour_ago, hour_ago))
    write_text_atomic(tmp_path / "index.faiss", "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files through /proc")
def test_without_file_locks_temporaries_are_not_held_open(tmp_path, monkeypatch):
    """Where fcntl is missing (Windows), no descriptor stays open on a temporary: Windows cannot
    rename an open file. The writes still land."""
    from sentsim.storage import atomic

    monkeypatch.setattr(atomic, "fcntl", None)

    def open_on(path) -> bool:
        fds = os.listdir("/proc/self/fd")
        return any(os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path) for fd in fds)

    with atomic_file(tmp_path / "index.faiss") as name:
        with open(name, "wb") as handle:
            handle.write(b"x")
        assert not open_on(name)
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "weights").write_text("x")
        assert not open_on(staging)
    assert (tmp_path / "index.faiss").read_bytes() == b"x"
    assert (tmp_path / "model" / "weights").read_text() == "x"


class _LocksNeedWritableFiles:
    """fcntl as on NFS: flock becomes a byte-range lock, refused (EBADF) on a read-only descriptor."""

    LOCK_EX, LOCK_NB = 2, 4

    @staticmethod
    def flock(fd, operation):
        import errno
        import fcntl

        if os.fstat(fd).st_mode & stat.S_IFDIR or (os.O_ACCMODE & fcntl.fcntl(fd, fcntl.F_GETFL)) == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        fcntl.flock(fd, operation)


@pytest.mark.parametrize("locks", ["nfs", "none"])
def test_where_locks_cannot_tell_age_alone_decides_with_a_week(tmp_path, monkeypatch, locks):
    """On NFS (locks only on writable files) and Windows (no fcntl) a sweep cannot see that a write
    is live: a temporary older than an hour is kept (a long index build), one older than a week goes."""
    from sentsim.storage import atomic

    monkeypatch.setattr(atomic, "fcntl", _LocksNeedWritableFiles if locks == "nfs" else None)
    now = os.stat(tmp_path).st_mtime
    hours, weeks = tmp_path / ".model.abcd1234.tmp", tmp_path / ".model.efgh5678.tmp"
    for folder, age in ((hours, 7200), (weeks, 8 * 24 * 3600)):
        folder.mkdir()
        (folder / "weights").write_text("x")
        os.utime(folder, (now - age, now - age))
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "weights").write_text("new")
    assert hours.is_dir() and not weeks.exists()
