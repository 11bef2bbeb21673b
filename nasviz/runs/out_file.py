"""The file a command writes (`--out FILE`: export, render, table assemble): never a user's file replaced unasked.

A path that exists is refused with one line naming it (the command line adds `--force`), unless the caller was
given `force`. The bytes go to a temporary file in the same folder, are flushed and fsync-ed, and only then take
the path's name: without `force` by a hard link, which fails if a file appeared there meanwhile (the check and the
write cannot race), with `force` by an atomic rename. A failure at any point leaves no partial file and the
previous file, if any, as it was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from nasviz.errors import CheckpointError, ConfigError, one_line

OUT_TMP_SUFFIX = ".partial"


def exists_refusal(path: Path, setting: str = "out") -> ConfigError:
    """The one-line error for an output path that exists already."""
    what = "a folder" if path.is_dir() and not path.is_symlink() else "a file" if path.exists() else "a link"
    return ConfigError(f"{setting}={one_line(str(path), 200)} exists already ({what}); nothing was written: choose "
                       "another path, or replace it with force=True", setting="force")


def check_out_file(out: str | Path, force: bool = False, setting: str = "out") -> Path:
    """`out` as a Path, if a command may write the file there: nothing at that path (or, with `force`, a file or a
    link, which is replaced: never a folder), a blank path refused, the nearest existing parent a folder."""
    from nasviz.runs.rundir import check_path

    path = check_path(out, setting).expanduser()
    flag = f"{setting}="
    if path.is_dir() and not path.is_symlink():
        raise ConfigError(f"{flag}{one_line(str(path), 200)} is a directory; give the path of a file to write",
                          setting=setting)
    if (path.exists() or path.is_symlink()) and not force:
        raise exists_refusal(path, setting)
    above = next((p for p in path.parents if p.exists()), Path("."))
    if not above.is_dir():
        raise ConfigError(f"{flag}{one_line(str(path), 200)}: {above} is a file, not a folder", setting=setting)
    return path


def write_out_file(path: str | Path, data: bytes, force: bool = False, setting: str = "out",
                   check: Callable[[Path], None] | None = None) -> Path:
    """Write `data` to the new file `path` (see the module docstring); its missing parent folders are made.
    `check`, given the written temporary file, may refuse it (by raising) before it takes the name `path`."""
    path = check_out_file(path, force, setting)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=OUT_TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(Path(tmp))
        _publish(Path(tmp), path, force, setting)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _publish(tmp: Path, path: Path, force: bool, setting: str) -> None:
    """Give the written temporary file `tmp` the name `path`: replacing what is there only with `force`."""
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path, follow_symlinks=False)
    except FileExistsError:
        raise exists_refusal(path, setting) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists() or path.is_symlink():  # a file system without hard links: check, then rename
            raise exists_refusal(path, setting) from None
        os.replace(tmp, path)
