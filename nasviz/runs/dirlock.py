"""One writer per folder: an OS-level lock (`fcntl.flock`) on a lock file inside the folder.

The kernel releases the lock when its process dies, however it dies (kill -9 too), so a stale lock never
blocks a folder. A second process is refused with a one-line error naming the process that writes there
(its pid and command, which the holder records in the lock file).

Inside one process the lock belongs to the process: `acquire` hands back the lock the process already holds,
and `FolderLock.adopt` makes an object (a search's recorder) its current writer, so a newer writer in the same
process takes over and the older one is refused at its next write (`FolderLock.owned_by`).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from pathlib import Path

from nasviz.errors import CheckpointError, one_line

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no OS-level lock, one writer is not enforced
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".nasviz.lock"
"""The lock file in a folder that a nasviz process writes (its content: the holder's pid and command)."""


class FolderBusy(CheckpointError):
    """Another process writes the folder now."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class FolderLock:
    """The lock this process holds on `folder` (see `acquire`); `owner` is the object now writing there."""

    def __init__(self, folder: Path, fd: int | None, key: tuple[int, int, str]) -> None:
        self.folder, self.fd, self.key = folder, fd, key
        self.owner: object | None = None

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.folder / self.key[2]

    @property
    def held(self) -> bool:
        return self.key in _HELD and _HELD[self.key] is self

    def adopt(self, owner: object) -> None:
        """Make `owner` the writer of the folder (a previous writer in this process is refused from now on)."""
        self.owner = owner

    def owned_by(self, owner: object) -> bool:
        return self.held and self.owner is owner

    def release(self) -> None:
        """Release the lock (the lock file stays: it marks the folder as one a nasviz process wrote)."""
        with _GUARD:
            if _HELD.get(self.key) is self:
                del _HELD[self.key]
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.owner = None

    def release_by(self, owner: object) -> None:
        """Release the lock if `owner` is its writer."""
        if self.owned_by(owner):
            self.release()

    def release_if_unowned(self) -> None:
        """Release the lock if no writer has adopted it (a claim or a resume that failed before it started)."""
        if self.held and self.owner is None:
            self.release()


_HELD: dict[tuple[int, int, str], FolderLock] = {}
_GUARD = threading.RLock()


def acquire(folder: str | Path, what: str = "folder", name: str = LOCK_FILE) -> FolderLock:
    """The lock of the existing `folder`: the one this process holds already, or a new one; `FolderBusy`
    (a one-line CheckpointError naming the other process) when another process holds it; CheckpointError when
    the lock file cannot be made (a read-only folder, a symbolic link in its place). `name`: the lock file (a part
    of a folder that has several writers, such as a table build's shards, has its own)."""
    folder = Path(folder)
    path = folder / name
    with _GUARD:
        try:
            st = os.stat(folder)
        except OSError as exc:
            raise CheckpointError(f"cannot lock {what} {folder}: {exc.strerror or exc}") from None
        key = (st.st_dev, st.st_ino, name)
        if key in _HELD and _still_there(_HELD[key], path):
            return _HELD[key]
        if key in _HELD:  # the folder it locked was removed and its inode reused: that lock guards nothing now
            _HELD[key].release()
        if fcntl is None:  # pragma: no cover
            lock = _HELD[key] = FolderLock(folder, None, key)
            return lock
        fd = _locked_fd(folder, path, what)
        record = {"pid": os.getpid(), "command": _command(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except OSError:
            pass  # the lock holds without the record; a refused process then says "pid unknown"
        lock = _HELD[key] = FolderLock(folder, fd, key)
        return lock


def _still_there(lock: FolderLock, path: Path) -> bool:
    """Whether `lock`'s descriptor is still the lock file at `path` (not one of a folder removed meanwhile)."""
    if lock.fd is None:
        return True
    try:
        return os.fstat(lock.fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
    except OSError:
        return False


def _locked_fd(folder: Path, path: Path, what: str) -> int:
    """A descriptor of the lock file `path`, locked exclusively. A lock taken on a file that was removed meanwhile
    (the holder of a failed command may remove the lock file it made) is taken again on the new one."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            why = "it is a symbolic link" if path.is_symlink() else exc.strerror or str(exc)
            raise CheckpointError(f"cannot lock {what} {folder} ({path}: {why})") from None
        _regular_or_refuse(fd, folder, path, what)
        _flock_or_busy(fd, fcntl.LOCK_EX, folder, what)
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except OSError:
            same = False
        if same:
            return fd
        os.close(fd)


def _regular_or_refuse(fd: int, folder: Path, path: Path, what: str) -> None:
    """Close `fd` and refuse (one line) when the lock file is not a regular file (a FIFO would block its reader)."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"cannot lock {what} {folder} ({path}: it is not a regular file; remove it)")


def _flock_or_busy(fd: int, mode: int, folder: Path, what: str) -> None:
    """Take `mode` (LOCK_EX or LOCK_SH) on `fd` without waiting; if another process holds the folder, close `fd`
    and raise `FolderBusy` naming that process."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError:
        busy = _busy(fd, folder, what)
        os.close(fd)
        raise busy from None


def _command() -> str:
    """This process's command line, as a person would type it (`python -m nasviz ...` for the command line)."""
    argv = list(sys.argv) or [""]
    head = "python -m nasviz" if argv[0].endswith(("nasviz/__main__.py", "nasviz")) else f"python {argv[0]}".strip()
    return " ".join([head, *argv[1:]])


def check_free(folder: str | Path, what: str = "folder") -> None:
    """`FolderBusy` if another process holds `folder`'s lock now; creates and changes nothing."""
    folder = Path(folder)
    if fcntl is None or held(folder) is not None:
        return
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # no lock file: no one has locked it
    _regular_or_refuse(fd, folder, folder / LOCK_FILE, what)
    _flock_or_busy(fd, fcntl.LOCK_SH, folder, what)
    os.close(fd)  # closing the only descriptor of this process on it releases the shared lock


def _busy(fd: int, folder: Path, what: str) -> FolderBusy:
    holder = _holder(fd)
    pid = holder.get("pid") if isinstance(holder.get("pid"), int) else None
    command = one_line(str(holder.get("command") or ""), 80)
    who = f"pid {pid}" if pid is not None else "pid unknown"
    return FolderBusy(f"{what} {folder} is in use by another nasviz process ({who}{': ' + command if command else ''}"
                      "); one process writes there at a time: wait for it to end or stop it, or choose another "
                      "folder", pid)


def _holder(fd: int) -> dict:
    """The record the holding process wrote into the lock file (it writes right after locking: a few tries)."""
    for _ in range(50):
        try:
            record = json.loads(os.pread(fd, 4096, 0).decode(errors="replace"))
            if isinstance(record, dict):
                return record
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    return {}


def held(folder: str | Path, name: str = LOCK_FILE) -> FolderLock | None:
    """The lock this process holds on `folder` (its lock file `name`), if any."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    lock = _HELD.get((st.st_dev, st.st_ino, name))
    return lock if lock is not None and _still_there(lock, Path(folder) / name) else None
