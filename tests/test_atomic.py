"""Atomic writes: permissions like a plain write, and folders put back after a crash mid-swap."""

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sentsim.atomic import atomic_file, atomic_folder, recover_folder, write_text_atomic

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


def test_model_folders_are_readable_by_others_under_the_usual_umask(tmp_path, tiny_transformer):
    from sentsim import SentenceEncoder

    command = "import os, sys; os.umask(0o022); from sentsim.atomic import write_text_atomic; write_text_atomic(sys.argv[1], 'x')"
    subprocess.run([sys.executable, "-c", command, str(tmp_path / "file.txt")], check=True)
    assert _mode(tmp_path / "file.txt") == 0o644
    SentenceEncoder(tiny_transformer).save_pretrained(tmp_path / "model")
    (tmp_path / "plain").mkdir()
    assert _mode(tmp_path / "model") == _mode(tmp_path / "plain")
    assert _mode(tmp_path / "model" / "model.safetensors") == _mode(tmp_path / "file.txt")


def _killed_between_the_renames(target) -> None:
    """Replace ``target`` in another process that dies (like a SIGKILL) after moving the old folder aside."""
    script = textwrap.dedent(
        """
        import os, sys
        import sentsim.atomic as atomic
        real = os.replace
        def replace(source, destination):
            if str(destination).endswith("/folder"):  # the old folder goes aside ...
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
    aside = tmp_path / ".model.k3j2.old"  # what a crash between the renames leaves, without a finished copy
    aside.mkdir()
    (tmp_path / "model").rename(aside / "folder")
    loaded = SentenceEncoder.from_pretrained(tmp_path / "model")
    np.testing.assert_allclose(loaded.encode(["a cat sleeps"]), encoder.encode(["a cat sleeps"]), atol=1e-6)


def test_a_failed_swap_leaves_the_old_folder_in_place(tmp_path, monkeypatch):
    import sentsim.atomic as atomic

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
