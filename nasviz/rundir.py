"""The run directory: the only module that knows its files and layout, writes them safely and reads them back.

A run directory holds `config.json`, `history.jsonl` (one row per generation), `events.jsonl`, `result.json`,
`checkpoint.pt` and, once rendered, `best_normal.svg`/`best_reduce.svg`, `report.html` and `figures/`.

Every whole-file write goes to a temporary file in the same folder, is flushed and fsync-ed, then renamed
over the target. Checkpoints load with `weights_only=True`, so a file carrying code is rejected unread.
torch is imported only to save or load a checkpoint, so the command line starts without it.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from nasviz.errors import CheckpointError, ConfigError, one_line
from nasviz.space import Genotype

CONFIG = "config.json"
HISTORY = "history.jsonl"
EVENTS = "events.jsonl"
RESULT = "result.json"
CHECKPOINT = "checkpoint.pt"
BEST_CELLS = "best"
"""Prefix of the rendered best cells: best_normal.svg, best_reduce.svg."""
REPORT = "report.html"
FIGURES = "figures"
"""Folder of the report's figures, one HTML page each."""
PARAMETERS = "parameters.json"
"""The notebook parameters of a batch point (beside its run directory `run/`, see `RUN_SUBDIR`)."""
BATCH = "batch.json"
"""The summary of a batch, in the batch's folder."""
RUN_SUBDIR = "run"
"""The run directory inside a batch point's folder and inside the demo's folder."""
SCRATCH = "train.json"
"""The result of a from-scratch training, in the folder it was given (e.g. a run directory's final/)."""
TMP_SUFFIX = ".tmp"
MARKERS = (CHECKPOINT, HISTORY, RESULT)
"""A folder holding any of these holds (part of) a search run."""

FILES = {
    CONFIG: "every setting of the run",
    HISTORY: "one line per generation: individuals, fitness before/after fine-tuning, trained paths",
    EVENTS: "every event, as the dashboard saw it",
    RESULT: "best genotype and fitness, top-k, switches, seed, wall time, supernet steps, versions",
    CHECKPOINT: "supernet, optimizer, GA state and RNG states (resume with Search.resume)",
    f"{BEST_CELLS}_normal.svg": "the best normal cell (graphviz)",
    f"{BEST_CELLS}_reduce.svg": "the best reduction cell (graphviz)",
    REPORT: "the static HTML report (figures, best cells, tables)",
}
"""What each file of a run directory holds."""


# --- readers ------------------------------------------------------------------------------------------------
def is_run_dir(path: str | Path) -> bool:
    """True when `path` is a folder holding (part of) a search run."""
    path = Path(path)
    try:
        return path.is_dir() and any((path / m).exists() or (path / m).is_symlink() for m in MARKERS)
    except OSError:  # e.g. a genotype's text, longer than a file name may be
        return False


def find_run_dirs(root: str | Path) -> list[Path]:
    """Every run directory under `root` (itself included), sorted."""
    root = Path(root)
    return sorted({p.parent for m in MARKERS for p in root.rglob(m) if is_run_dir(p.parent)})


def load_history(run_dir: str | Path) -> list[dict]:
    """The history rows (one per generation) of a run directory, running or finished."""
    return read_jsonl(Path(run_dir) / HISTORY)


def load_result(run_dir: str | Path) -> dict | None:
    """result.json's content, or None while there is none (the run has not reached its first checkpoint)."""
    return read_json_or_none(Path(run_dir) / RESULT)


def load_config(run_dir: str | Path) -> dict | None:
    """config.json's content (every setting of the run), or None when it is missing."""
    return read_json_or_none(Path(run_dir) / CONFIG)


def load_parameters(folder: str | Path) -> dict | None:
    """The notebook parameters a batch recorded for the run in `folder` (beside it or one level up), or None."""
    folder = Path(folder)
    return read_json_or_none(folder / PARAMETERS) or read_json_or_none(folder.parent / PARAMETERS)


def best_genotype(run_dir: str | Path) -> Genotype:
    """The best genotype a run directory records; ConfigError while it has none."""
    result = read_json(Path(run_dir) / RESULT) if (Path(run_dir) / RESULT).exists() else None
    best = result.get("best_genotype") if isinstance(result, dict) else None
    if not best:
        raise ConfigError(f"run directory {run_dir} has no best genotype yet")
    return Genotype.parse(best)


def genotype_from(text: str) -> Genotype:
    """A genotype from DARTS text, a fixture name, or a run directory (its best genotype)."""
    if len(text) < 4096 and is_run_dir(text):
        return best_genotype(text)
    return Genotype.parse(text)


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or not valid JSON (a run still being written)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# --- folders ------------------------------------------------------------------------------------------------
def check_new(out: str | Path) -> Path:
    """`out` as a Path, if a new run may go there; refuses a folder that holds a run (never overwrite finished
    work) and a path that is or lies under a file. Creates nothing."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"run directory {path} exists and is not a directory", setting="out")
    if is_run_dir(path):
        raise CheckpointError(f"{path} already holds a search run; resume it or choose another run directory",
                              setting="out")
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise CheckpointError(f"run directory {path}: {parent} is not a directory", setting="out")
    return path


def create(out: str | Path) -> Path:
    """Create a new run directory (see `check_new`)."""
    path = check_new(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the run directory {path}: {exc.strerror or exc}",
                              setting="out") from None
    return path


def check_existing(run_dir: str | Path) -> Path:
    """`run_dir` as a Path if it is a directory (to resume); CheckpointError otherwise."""
    path = Path(run_dir)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise CheckpointError(f"run directory {path} {what}", setting="resume")
    return path


def load_search_state(run_dir: str | Path) -> dict:
    """The checkpoint of the search in `run_dir` (to resume it); CheckpointError if there is none or it is not
    a search's."""
    path = check_existing(run_dir) / CHECKPOINT
    state = load_checkpoint(path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds no search config; it is not a nasviz search checkpoint")
    return state


def keep_history(run_dir: Path, generation: int) -> None:
    """Drop the history rows after `generation` (written after the last checkpoint) and torn lines."""
    rows = [r for r in load_history(run_dir)
            if isinstance(r, dict) and isinstance(r.get("generation"), int) and r["generation"] <= generation]
    write_jsonl(Path(run_dir) / HISTORY, rows)


def fresh_sibling(path: str | Path, stamp: str | None = None) -> Path:
    """A path that does not exist yet: `path-<stamp>` (default stamp: now, YYYYmmdd-HHMMSS), then `-2`, `-3`..."""
    path = Path(path)
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    candidate, k = path.with_name(f"{path.name}-{stamp}"), 2
    while candidate.exists():
        candidate, k = path.with_name(f"{path.name}-{stamp}-{k}"), k + 1
    return candidate


# --- safe writes --------------------------------------------------------------------------------------------
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
    import torch

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
    import torch

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
        raise CheckpointError(f"{path} is truncated or corrupt ({type(exc).__name__}: {one_line(exc, 160)})") from None


def _unpickling_reason(exc: Exception) -> str:
    """The informative part of torch's weights_only error (not its advice to retry unsafely)."""
    boilerplate = ("weights only load failed", "please file an issue", "check the documentation", "(1) ", "(2) ")
    lines = [line.strip() for line in str(exc).splitlines()]
    reason = " ".join(line for line in lines if line and not line.lower().startswith(boilerplate))
    return one_line(reason.removeprefix("WeightsUnpickler error:").strip() or "unsupported content", 160)
