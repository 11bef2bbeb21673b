"""Files of a run directory, written so that a crash at any moment leaves the previous complete version.

Every whole-file write goes to a temporary file in the same folder, is flushed and fsync-ed, then renamed
over the target. Checkpoints load with `weights_only=True`, so a file carrying code is rejected unread.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from nasviz.errors import CheckpointError

CONFIG = "config.json"
HISTORY = "history.jsonl"
EVENTS = "events.jsonl"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
TMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, flush, fsync, rename).

    The rename replaces `path` itself, never the target of a symbolic link there. An OSError (disk full, no
    permission, `path` is a folder) becomes a one-line `CheckpointError`; the previous version stays."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that a kill in the middle of `atomic_write_bytes` left in `folder`."""
    removed = []
    for name in (CONFIG, HISTORY, RESULT, CHECKPOINT):
        for tmp in Path(folder).glob(f".{name}.*{TMP_SUFFIX}"):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the file is corrupt") from None


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """Rewrite a JSON-lines file atomically with `rows`."""
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def read_jsonl(path: Path) -> list[Any]:
    """All complete lines of a JSON-lines file (a line torn by a crash mid-append is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def open_append(path: Path):
    """Open `path` for appending text lines, never through a symbolic link (a run directory writes only
    inside itself). A last line torn by a crash is ended first, so the next line starts cleanly."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if path.is_symlink():
            raise CheckpointError(f"{path} is a symbolic link; a run directory writes only inside itself") from None
        raise CheckpointError(f"cannot append to {path}: {exc.strerror or exc}") from None
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
    return os.fdopen(fd, "a", encoding="utf-8")


def append_jsonl(path: Path, row: Any) -> None:
    """Append one JSON line to `path` (see `open_append`), flushed and fsync-ed (it is part of a run's state)."""
    with open_append(path) as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


class JsonlAppender:
    """Append JSON lines to a file, flushed after each line (a log: events, not state)."""

    def __init__(self, path: Path) -> None:
        self.file = open_append(path)

    def __call__(self, row: Any) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def save_checkpoint(path: Path, state: dict) -> None:
    """Save `state` (tensors, numbers, strings, lists, tuples, dicts only) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint with `weights_only=True`; a missing, truncated, corrupt or unsafe file is an error."""
    path = Path(path)
    state = safe_torch_load(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != "nasviz-checkpoint":
        raise CheckpointError(f"{path} is not a nasviz checkpoint")
    if state.get("version") != 1:
        raise CheckpointError(f"{path} has checkpoint format version {state.get('version')!r}; this nasviz reads 1")
    return state


def safe_torch_load(path: Path, kind: str = "checkpoint") -> Any:
    """`torch.load(path, weights_only=True)` onto the CPU; a missing, truncated, corrupt or unsafe file (one that
    refers to code) is a one-line `CheckpointError` naming `path` and `kind` ("checkpoint", "model file")."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {kind} at {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickling_reason(exc)
        what = (f"is not a safe nasviz {kind}: it refers to code" if "global" in reason.lower()
                else f"is truncated, corrupt or not a nasviz {kind}")
        raise CheckpointError(f"{path} {what} ({reason}); refused to load it, nothing in it was run") from None
    except Exception as exc:  # truncated zip, bad magic number, ...
        text = " ".join(str(exc).split())
        text = text if len(text) <= 160 else text[:157] + "..."
        raise CheckpointError(f"{path} is truncated or corrupt ({type(exc).__name__}: {text})") from None


def _unpickling_reason(exc: Exception) -> str:
    """The informative part of torch's weights_only error (not its advice to retry unsafely)."""
    boilerplate = ("weights only load failed", "please file an issue", "check the documentation", "(1) ", "(2) ")
    lines = [line.strip() for line in str(exc).splitlines()]
    reason = " ".join(line for line in lines if line and not line.lower().startswith(boilerplate))
    reason = reason.removeprefix("WeightsUnpickler error:").split(" Please use `torch.serialization")[0]
    reason = reason.strip() or "unsupported content"
    return reason if len(reason) <= 160 else reason[:157] + "..."
