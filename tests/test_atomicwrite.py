"""npcnn.atomicwrite: one helper for checkpoints and downloads, tried against odd targets.

Each case goes through both the helper and ``save_checkpoint`` where it matters
to a user: permission modes, symlinks, device files, directories, FIFOs, a crash
in the middle, and the fsync of the folder after the rename.
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from npcnn import atomicwrite
from npcnn.atomicwrite import NotARegularFileError, atomic_write
from npcnn.checkpoint import load_checkpoint, save_checkpoint

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions, links, FIFOs")


def write_bytes(content):
    return lambda f: f.write(content)


def save_tiny(path, value=1.0):
    save_checkpoint(path, [("dense/kernel", np.full((2, 2), value, np.float32))], meta={"step": 1})


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_and_replaces_leaving_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    assert atomic_write(path, write_bytes(b"one")) == path
    atomic_write(path, write_bytes(b"two"))
    assert path.read_bytes() == b"two"
    assert os.listdir(path.parent) == ["f.bin"]


@posix_only
def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "ck.npz"
    save_tiny(path)
    os.chmod(path, 0o640)
    save_tiny(path, 2.0)
    assert mode(path) == 0o640
    assert load_checkpoint(path)["weights"]["dense/kernel"][0, 0] == 2.0
    os.chmod(path, 0o604)
    atomic_write(path, write_bytes(b"x"))
    assert mode(path) == 0o604


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_umask_mode_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_tiny(tmp_path / "ck.npz")
        atomic_write(tmp_path / "plain", write_bytes(b"x"))
    finally:
        os.umask(old)
    assert mode(tmp_path / "ck.npz") == 0o666 & ~umask
    assert mode(tmp_path / "plain") == 0o666 & ~umask


@posix_only
def test_symlink_is_followed_and_its_target_replaced(tmp_path):
    real = tmp_path / "runs" / "real.npz"
    real.parent.mkdir()
    save_tiny(real)
    os.chmod(real, 0o640)
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    save_tiny(link, 3.0)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_checkpoint(real)["weights"]["dense/kernel"][0, 0] == 3.0
    assert mode(real) == 0o640
    assert sorted(os.listdir(real.parent)) == ["real.npz"]  # the temp file was beside the target


@posix_only
def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "new")
    atomic_write(link, write_bytes(b"made"))
    assert link.is_symlink() and (tmp_path / "new").read_bytes() == b"made"


@posix_only
def test_device_file_is_refused_before_writing(tmp_path, monkeypatch):
    # A regression must fail this test, not replace the machine's /dev/null (as root it could)
    real_replace = os.replace

    def replace_only_in_tmp(src, dst):
        if not os.path.realpath(dst).startswith(str(tmp_path)):
            pytest.fail(f"atomic_write tried to replace {dst}")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_only_in_tmp)
    wrote = []
    with pytest.raises(NotARegularFileError, match="/dev/null.*character device"):
        atomic_write("/dev/null", lambda f: wrote.append(1))
    assert wrote == []
    with pytest.raises(NotARegularFileError, match="/dev/null"):
        save_tiny("/dev/null")
    link = tmp_path / "sneaky.npz"
    link.symlink_to("/dev/null")
    with pytest.raises(NotARegularFileError, match="sneaky.npz.*link to /dev/null"):
        save_tiny(link)
    assert os.listdir(tmp_path) == ["sneaky.npz"]


def test_directory_is_refused_before_writing(tmp_path):
    folder = tmp_path / "ck.npz"
    folder.mkdir()
    (folder / "inside").write_text("keep")
    with pytest.raises(NotARegularFileError, match="ck.npz.*a directory"):
        save_tiny(folder)
    assert isinstance(NotARegularFileError("x"), OSError)
    assert os.listdir(folder) == ["inside"] and sorted(os.listdir(tmp_path)) == ["ck.npz"]


@posix_only
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFileError, match="pipe.*FIFO"):
        atomic_write(fifo, write_bytes(b"x"))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt])
def test_failure_while_writing_leaves_the_old_file_and_no_temp(tmp_path, error):
    path = tmp_path / "ck.npz"
    save_tiny(path)
    before = path.read_bytes()

    def fail(f):
        f.write(b"half of it")
        raise error

    with pytest.raises(type(error) if isinstance(error, OSError) else error):
        atomic_write(path, fail)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_failed_verification_or_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"old")

    def reject(tmp):
        assert tmp.read_bytes() == b"new" and tmp.parent == tmp_path
        raise ValueError("bad content")

    with pytest.raises(ValueError, match="bad content"):
        atomic_write(path, write_bytes(b"new"), verify=reject)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("rename failed")))
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(path, write_bytes(b"new"))
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


@posix_only
def test_file_and_then_folder_are_fsynced(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "ck.npz"
    save_tiny(path)
    assert events == [("fsync", False), ("replace", str(path)), ("fsync", True)]


def test_fsync_dir_tolerates_platforms_without_folder_handles(tmp_path, monkeypatch):
    def no_open(*args, **kwargs):
        raise PermissionError("folders cannot be opened here")

    monkeypatch.setattr(os, "open", no_open)
    atomicwrite.fsync_dir(tmp_path)  # no error
