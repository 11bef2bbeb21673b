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
from pathlib import Path
from typing import Any

import torch

from nasviz.errors import CheckpointError

CONFIG = "config.json"
HISTORY = "history.jsonl"
EVENTS = "events.jsonl"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temporary file, flush, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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
    """All complete lines of a JSON-lines file (a torn last line, from a crash mid-append, is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


class JsonlAppender:
    """Append JSON lines to a file, flushed after each line (a log: events, not state)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

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
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported content"
        raise CheckpointError(f"{path} is not a safe nasviz checkpoint (refused to load: {first})") from None
    except Exception as exc:  # truncated zip, bad magic number, ...
        raise CheckpointError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not isinstance(state, dict) or state.get("format") != "nasviz-checkpoint":
        raise CheckpointError(f"{path} is not a nasviz checkpoint")
    return state
