"""The data layer reads regular files only: a FIFO, a device or a socket where an image or a dataset file should be
would block a plain `open` or `read` for ever. As with an image that cannot be decoded, loading stops with one
line naming the file (never skips it silently): `open_regular` opens with `O_NONBLOCK` and checks the opened
descriptor (no race between a check and the open); `check_tree` refuses such an entry anywhere under a dataset's
folders before a reader (torchvision's) opens them. (`nasviz.runs.regular_files` does the same for run files.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from nasviz.errors import DataError

KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
         stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def refusal(path: Path, mode: int | None) -> DataError:
    """The one-line DataError for `path`, which is not a regular file (`mode`: its st_mode; None: a broken link)."""
    kind = "a broken symbolic link" if mode is None else KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return DataError(f"{path} is {kind}, not a regular file; a dataset is read from regular files only: replace it "
                     "with the file it should be, or remove it")


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for binary reading if it is a regular file (a link to one is followed); DataError naming it
    otherwise (a missing file too)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise refusal(path, stat.S_IFDIR) from None
    except FileNotFoundError:
        raise (refusal(path, None) if path.is_symlink() else DataError(f"{path} does not exist")) from None
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise refusal(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_tree(paths: Iterable[Path]) -> None:
    """DataError naming the first entry under `paths` (files, or folders searched recursively; missing ones
    skipped) that is neither a regular file nor a folder: a FIFO, a device, a socket, a broken link."""
    for top in paths:
        for path in (top, *(top.rglob("*") if top.is_dir() else ())):
            try:
                mode = path.stat().st_mode
            except FileNotFoundError:
                if path.is_symlink():
                    raise refusal(path, None) from None
                continue
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise refusal(path, mode)
