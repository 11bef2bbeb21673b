"""Opening a file that nasviz reads (run files, build folders, model files, tables, notebooks): regular files only.

A FIFO, a device or a socket where a run file should be would block a plain `open` or `read` for ever. `open_regular`
opens with `O_NONBLOCK` (so opening a FIFO returns at once, with no writer too), then checks with `fstat` on the
opened descriptor (no race between a check and the open) that it is a regular file, and refuses anything else with
a one-line `NotRegularFile` (a `CheckpointError`) naming the path. A missing file raises FileNotFoundError, as
`open` does, so callers keep their own "missing" handling.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from nasviz.errors import CheckpointError, one_line

_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


class NotRegularFile(CheckpointError):
    """A path nasviz reads is not a regular file (a FIFO, a device, a socket, a folder)."""


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file (a symbolic link to one is followed);
    NotRegularFile otherwise; FileNotFoundError if it is missing."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise NotRegularFile(_refusal(path, stat.S_IFDIR)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_refusal(path, stat.S_IFMT(mode)))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _refusal(path: Path, kind: int) -> str:
    return (f"{one_line(str(path), 200)} is {_KINDS.get(kind, 'not a regular file')}, not a regular file; nasviz "
            "reads only regular files: replace it with the file it should be, or remove it")


def read_bytes(path: str | Path) -> bytes:
    """The content of the regular file `path` (see `open_regular`)."""
    with open_regular(path) as f:
        return f.read()


def read_text(path: str | Path, errors: str = "strict") -> str:
    """The UTF-8 text of the regular file `path` (see `open_regular`)."""
    return read_bytes(path).decode("utf-8", errors=errors)


def is_regular(path: str | Path) -> bool:
    """Whether `path` is a regular file now (a link to one counts), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False
