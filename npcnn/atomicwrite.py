"""Write a file so that it is either the old file or the complete new one, never half of each.

One helper, :func:`atomic_write`, serves checkpoints (``save_checkpoint``) and
data downloads (``npcnn.datasets.fetch``). What it does, in order:

1. Looks at the target path *before writing anything*. A symlink is followed:
   the file it points to is what gets replaced, and the link stays a link (a
   dangling link gets its target created). Whatever is at the (resolved) path
   must be a regular file or nothing: a directory, a device file such as
   ``/dev/null``, a FIFO or a socket is refused with :class:`NotARegularFileError`,
   which names the path.
2. Writes the new content to a temporary file in the same folder (the same file
   system, so the rename below is atomic), flushes it and fsyncs it.
3. Gives it the permission mode of the file it replaces, or for a new file the
   mode ``open()`` would give (0o666 less the umask), not ``mkstemp``'s 0o600.
4. Runs the optional ``verify(temp_path)`` check, then renames the temporary
   file over the target (``os.replace``) and fsyncs the folder, so the rename
   itself survives a power cut.

On any failure, Ctrl-C included, the temporary file is removed and the existing
file is left untouched. A process killed outright (SIGKILL, a power cut) cannot
remove its temporary file, ``.<name>.<host>-<pid>-<random>.part``; the next
successful write to the same target removes such leftovers of processes of this
host that are no longer running (:func:`remove_stale_temporaries`), never the
file of a writer still at work, so two processes may write the same target at
once: the file is then the whole of one or the other.
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
from pathlib import Path

_HOST = socket.gethostname().replace("/", "_")  # part of every temporary file's name


class NotARegularFileError(OSError):
    """The target path holds something other than a regular file (a directory, a device...)."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _current_umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it and set it back
    os.umask(mask)
    return mask


def resolve_target(path) -> tuple[Path, int]:
    """The file to replace (symlinks followed) and the mode the new file should get.

    Raises :class:`NotARegularFileError` if something other than a regular file is there.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, 0o666 & ~_current_umask()
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        shown = str(path) if target == path else f"{path} (a link to {target})"
        raise NotARegularFileError(f"refusing to write {shown}: it is {kind}, not a regular file")
    return target, stat.S_IMODE(st.st_mode)


def fsync_dir(folder) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, write, *, verify=None) -> Path:
    """Replace the regular file at ``path`` by what ``write(f)`` writes to a binary file ``f``.

    Args:
        path: the target; a symlink is followed and its target replaced.
        write: called once with the open temporary file.
        verify: optional, called with the temporary file's path after it is on
            disk and before the rename; raise to abort (nothing is replaced).

    Returns the path actually written (the link's target for a symlink).
    Raises :class:`NotARegularFileError` before writing anything if the path
    holds a directory, device, FIFO or socket. See the module docstring.
    """
    target, mode = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}.{_HOST}-{os.getpid()}-"  # whose it is: see remove_stale_temporaries
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".part")
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    remove_stale_temporaries(target)
    return target


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (POSIX: signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(target) -> list[Path]:
    """Delete the temporary files that killed writers left beside ``target``; return them.

    Only files named as :func:`atomic_write` names them, made on this host by a
    process that is no longer running. On a system without POSIX process
    probing (Windows) nothing is removed.
    """
    if os.name != "posix":
        return []
    target = Path(target)
    start = f".{target.name}.{_HOST}-"
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    for name in names:
        if not (name.startswith(start) and name.endswith(".part")):
            continue
        pid = name[len(start) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            path = target.parent / name
            try:
                path.unlink()
            except FileNotFoundError:  # another writer removed it first
                continue
            removed.append(path)
    return removed
