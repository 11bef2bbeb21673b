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
import stat
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from nasviz.errors import CheckpointError, ConfigError, one_line
from nasviz.runs import dirlock, safe_json
from nasviz.runs import lineage as lineages
from nasviz.runs.folder_claim import claim_folder
from nasviz.runs.history_row import row_problem
from nasviz.runs.regular_files import NotRegularFile, open_regular, read_text
from nasviz.space.genotypes import Genotype
from nasviz.userpath import expand

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
LOCK = dirlock.LOCK_FILE
"""The lock file of a run directory: the process writing the run holds an OS-level lock on it (one writer)."""
MAX_NAME, MAX_PATH = 255, 4095
"""Longest file name and path (bytes) that Linux file systems allow."""
LEFTOVERS = (CONFIG, EVENTS)
"""What a run that stopped before its first checkpoint leaves beside its lock file (a new run replaces it)."""
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


def load_history(run_dir: str | Path, *, check: bool = False) -> list[dict]:
    """The history rows (one per generation) of a run directory, running or finished: [] while there are none
    (a line torn by a crash is skipped). With `check`, every row must be a `HistoryRow` (`history_row.row_problem`):
    CheckpointError, naming the file and the row, where one does not (what the figures and reports read)."""
    path = Path(run_dir) / HISTORY
    rows = read_jsonl(path)
    for k, row in enumerate(rows if check else ()):
        problem = row_problem(row)
        if problem:
            raise CheckpointError(f"{path} is damaged: row {k + 1} {problem}")
    return rows


def lineage(run_dir: str | Path) -> dict[str, dict]:
    """Every individual of a run by id, in order of birth: its genotype, lineage (born, operator, parents,
    changes), fitness story and part in each generation (`nasviz.runs.lineage.individuals`). Runs recorded before
    lineage read too: ids by the same rule, operator and parents None (unknown)."""
    return lineages.individuals(load_history(run_dir, check=True))


def individual(run_dir: str | Path, individual_id: str) -> dict:
    """One individual of a run (`lineage`'s record), by id or genotype text; ValueError naming the id and
    what is allowed where the run has none such."""
    return lineages.find(lineage(run_dir), individual_id)


def load_result(run_dir: str | Path) -> dict | None:
    """result.json's content, or None while there is none or it is not JSON (torn); CheckpointError, naming the
    file, when it is JSON but not an object."""
    return _object_or_none(Path(run_dir) / RESULT)


def load_config(run_dir: str | Path) -> dict | None:
    """config.json's content (every setting of the run), or None when it is missing or not JSON (torn);
    CheckpointError, naming the file, when it is JSON but not an object."""
    return _object_or_none(Path(run_dir) / CONFIG)


def _object_or_none(path: Path) -> dict | None:
    try:
        value = safe_json.loads(read_text(path))
    except (OSError, ValueError):
        return None  # missing, or torn: not JSON
    if not isinstance(value, dict):  # JSON null included: that is no torn write
        raise CheckpointError(f"{path} is damaged: it holds {type(value).__name__} {one_line(json.dumps(value), 40)}"
                              ", not a JSON object")
    return value


def read_json_object(path: Path) -> dict | None:
    """A JSON file holding an object: its content, None when the file is missing, CheckpointError (naming the file)
    when it is truncated, not JSON or not an object."""
    if not Path(path).exists():
        return None
    value = read_json(path)
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} is damaged: it holds {type(value).__name__} {one_line(json.dumps(value), 40)}"
                              ", not a JSON object")
    return value


def load_parameters(folder: str | Path) -> dict | None:
    """The notebook parameters a batch recorded for the run in `folder` (beside it or one level up), or None."""
    folder = Path(folder)
    for path in (folder / PARAMETERS, folder.parent / PARAMETERS):
        value = read_json_or_none(path)
        if isinstance(value, dict):
            return value
    return None


def best_genotype(run_dir: str | Path) -> Genotype:
    """The best genotype a run directory records: result.json's, else (a run killed before its result was written)
    the last generation's in history.jsonl; ConfigError while it has none, CheckpointError (naming the file) when
    result.json is damaged."""
    result = read_json_object(check_path(run_dir, "run_dir") / RESULT)
    best = result.get("best_genotype") if result is not None else None
    if best is not None and not isinstance(best, str):
        raise CheckpointError(f"{Path(run_dir) / RESULT} is damaged: best_genotype={one_line(repr(best), 40)} is not "
                              "genotype text")
    if not best:
        rows = [r for r in read_jsonl(Path(run_dir) / HISTORY) if row_problem(r) is None]
        best = rows[-1]["best"]["genotype"] if rows else None
    if not best:
        raise ConfigError(f"run directory {run_dir} has no best genotype yet")
    return Genotype.parse(best)


def genotype_from(text: str) -> Genotype:
    """A genotype from DARTS text, a fixture name, or a run directory (its best genotype)."""
    if len(text) < 4096 and is_run_dir(text):
        return best_genotype(text)
    return Genotype.parse(text)


def read_json_or_none(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or not valid JSON (a run still being written);
    NotRegularFile (one line) when it is a FIFO, a device or a folder."""
    try:
        return safe_json.loads(read_text(path))
    except (OSError, ValueError):
        return None


# --- folders ------------------------------------------------------------------------------------------------
def check_path(path: str | Path, setting: str = "out") -> Path:
    """`path` as a Path; a blank or whitespace-only path (which would mean the current folder) is refused."""
    if not str(path).strip():
        raise ConfigError(f"{setting}={str(path)!r} is blank; allowed: a folder path", setting=setting)
    longest = max((part for part in Path(path).parts), key=lambda p: len(os.fsencode(p)), default="")
    if len(os.fsencode(longest)) > MAX_NAME or len(os.fsencode(str(path))) > MAX_PATH:
        raise ConfigError(f"{setting}={one_line(str(path), 60)!r} is too long; allowed: names of at most {MAX_NAME} "
                          f"bytes in a path of at most {MAX_PATH}", setting=setting)
    return expand(path, setting)


def foreign_entries(folder: Path, locked_before: bool | None = None) -> list[str]:
    """The entries of `folder` that are not a nasviz run's own: everything but the lock file and, beside it, what
    a run that stopped before its first checkpoint leaves (`LEFTOVERS`, temporary files). Those count as a run's
    only where the lock file was there before (`locked_before`; None: where it is there now) *and* their content is
    a run's (`is_leftover`): a lock file alone proves nothing (one left by another tool, or by a claim that was
    refused, must not make a user's config.json a run's)."""
    names = sorted(entry.name for entry in Path(folder).iterdir())
    if not (LOCK in names if locked_before is None else locked_before):
        return [n for n in names if n != LOCK]
    return [n for n in names if n != LOCK and not _is_temporary(n)
            and not (n in LEFTOVERS and is_leftover(Path(folder) / n))]


RUN_CONFIG_KEYS = frozenset({"method", "population", "generations", "seed", "preset", "dataset", "space"})
"""Settings that every search's config.json holds (a JSON object without them is not a run's)."""


def is_leftover(path: Path) -> bool:
    """Whether `path` is a regular file that a nasviz search wrote: config.json with a search's settings, or
    events.jsonl whose first line is an event (an object with a "type")."""
    try:
        if path.is_symlink():
            return False
        with open_regular(path) as f:
            head = f.read(1 << 16) if path.name == CONFIG else f.readline(1 << 16)
    except (OSError, NotRegularFile):
        return False
    try:
        value = json.loads(head)
    except ValueError:
        return False
    if path.name == CONFIG:
        return isinstance(value, dict) and RUN_CONFIG_KEYS <= value.keys()
    return isinstance(value, dict) and isinstance(value.get("type"), str)


def check_new(out: str | Path, locked_before: bool | None = None) -> Path:
    """`out` as a Path, if a new run may go there: a new folder, an empty one, or one that a run stopped before
    its first checkpoint left. Refuses a folder that holds a run (never overwrite finished work), a folder
    that holds anything else (never overwrite what is not ours), a blank path, and a path that is or lies under
    a file. Creates nothing."""
    path = check_path(out)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"run directory {path} exists and is not a directory", setting="out")
    if path.is_dir():
        dirlock.check_free(path, "run directory")  # another process writes there: say which
    if is_run_dir(path):
        raise CheckpointError(f"{path} already holds a search run; resume it or choose another run directory",
                              setting="out")
    if path.is_dir():
        try:
            foreign = foreign_entries(path, locked_before)
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}", setting="out") from None
        if foreign:
            shown = ", ".join(repr(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                                               else "")
            raise CheckpointError(f"{path} is not empty (it holds {shown}) and holds no nasviz run; a new search "
                                  "writes only into a new or empty folder: choose another run directory",
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


def check_resumable(run_dir: str | Path) -> Path:
    """`run_dir` as a Path if it is a directory holding a checkpoint (checked before anything is written there,
    the lock file included: a folder that holds no run is not touched)."""
    path = check_existing(run_dir)
    if (path / CHECKPOINT).exists():
        open_regular(path / CHECKPOINT).close()  # a FIFO or a device: NotRegularFile, never waited on
    if not (path / CHECKPOINT).is_file():
        raise CheckpointError(f"no checkpoint at {path / CHECKPOINT}; it is not a run that can be resumed",
                              setting="resume")
    return path


def check_existing(run_dir: str | Path) -> Path:
    """`run_dir` as a Path if it is a directory (to resume); CheckpointError otherwise."""
    path = check_path(run_dir, "resume")
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise CheckpointError(f"run directory {path} {what}", setting="resume")
    return path


def check_output_folder(out: str | Path, files: tuple[str, ...], setting: str = "out") -> Path:
    """`out` as a Path if `files` may be written into it: a new folder, or an existing one that holds none of
    them yet (a command never overwrites what it wrote before, nor a user's file of that name). Refuses a blank
    path and a path that is or lies under a file. Creates nothing."""
    path = check_path(out, setting)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} exists and is not a directory", setting=setting)
    present = [name for name in files if (path / name).exists() or (path / name).is_symlink()]
    if present:
        raise CheckpointError(f"{path} already holds {present[0]}; choose another folder (nothing is overwritten)",
                              setting=setting)
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise CheckpointError(f"{path}: {parent} is not a folder", setting=setting)
    return path


# --- one writer -----------------------------------------------------------------------------------------------
def lock(folder: str | Path, what: str = "run directory") -> dirlock.FolderLock:
    """This process's lock on the existing `folder` (see `nasviz.runs.dirlock`); `dirlock.FolderBusy`, naming the
    process, while another process writes there."""
    return dirlock.acquire(folder, what)


def start_new(out: str | Path) -> dirlock.FolderLock:
    """Create the new run directory `out` and lock it; under the lock it is checked again (nothing started
    there meanwhile) and a stopped-before-its-first-checkpoint run's leftovers are removed."""
    path = check_new(out)
    with claim_folder(path, "run directory", check=check_new) as claim:
        for name in LEFTOVERS:  # proven a stopped run's by check_new (`is_leftover`), else it refused the folder
            (path / name).unlink(missing_ok=True)
        remove_temporaries(path)
        return claim.keep()


def claim_fresh(out: str | Path, *, folder_of_runs: bool = False) -> tuple[Path, str | None]:
    """A folder for a new run (or, with `folder_of_runs`, for a folder of runs: nothing in it), created and
    locked by this process until a search adopts it: `out` if it is free, else the first free sibling
    `out-YYYYmmdd-HHMMSS[-k]`. Taken atomically: two processes asking at once get two folders. Returns the folder
    and why `out` was not used (None when it was)."""
    path = check_path(out).expanduser()
    why = None
    for candidate in _candidates(path):
        reason = _claim(candidate, folder_of_runs)
        if reason is None:
            return candidate, why
        why = why or reason
    raise CheckpointError(f"found no free folder beside {path}", setting="out")


def _candidates(path: Path, tries: int = 1000):
    yield path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    yield path.with_name(f"{path.name}-{stamp}")
    for k in range(2, tries):
        yield path.with_name(f"{path.name}-{stamp}-{k}")


class _NotFree(CheckpointError):
    """A folder that `_claim` may not take (it holds a run, or something else)."""


def _claim(folder: Path, folder_of_runs: bool) -> str | None:
    """None if `folder` is now created and locked by this process for a new run, else why not (and then the folder
    is left as it was: no lock file, no folder made)."""
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        return "is a file"
    mine = dirlock.held(folder)
    if mine is not None and mine.owner is not None:
        return "is in use by a search of this process"

    def check(path: Path, locked_before: bool) -> None:
        try:
            if folder_of_runs:
                if foreign_entries(path, False) or is_run_dir(path):
                    raise CheckpointError("is not empty")
            else:
                check_new(path, locked_before)
        except CheckpointError as exc:
            raise _NotFree("already holds a run" if is_run_dir(path) else "is not empty") from exc

    try:
        with claim_folder(folder, "run directory", check=check) as claim:
            claim.keep()
    except dirlock.FolderBusy as exc:
        return f"is in use by another process (pid {exc.pid})"
    except _NotFree as exc:
        return str(exc)
    return None


def fingerprint(run_dir: Path) -> tuple:
    """Identity of the run's state files now (inode, size, mtime of config.json, history.jsonl, checkpoint.pt):
    a change means another writer wrote there."""
    marks = []
    for name in (CONFIG, HISTORY, CHECKPOINT):
        try:
            st = os.stat(Path(run_dir) / name)
            marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            marks.append(None)
    return tuple(marks)


def load_search_state(run_dir: str | Path) -> dict:
    """The checkpoint of the search in `run_dir` (to resume it); CheckpointError if there is none or it is not
    a search's."""
    path = check_existing(run_dir) / CHECKPOINT
    state = load_checkpoint(path)
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{path} holds no search config; it is not a nasviz search checkpoint")
    return state


def repairs_on_resume(run_dir: Path, generation: int) -> list[str]:
    """What a resume from a checkpoint at `generation` rewrites because it was missing or damaged, one sentence
    each: config.json and result.json (rewritten whole from the checkpoint), events.jsonl (only what follows
    is recorded). history.jsonl cannot be repaired: a resume without it is refused before this
    (`nasviz.search.checkpoint.check_history`)."""
    where = "the warm-up" if generation < 0 else f"generation {generation}"
    repairs = []
    for name in (CONFIG, RESULT):
        path = Path(run_dir) / name
        state = "missing" if not path.exists() else "damaged (not a JSON object)" if not isinstance(
            read_json_or_none(path), dict) else None
        if state:
            repairs.append(f"{path} was {state}: rewritten from {CHECKPOINT} (at {where})")
    if not (Path(run_dir) / EVENTS).exists():
        repairs.append(f"{Path(run_dir) / EVENTS} was missing: the events from now on are recorded in a new one "
                       "(those before the checkpoint are lost)")
    return repairs


def keep_history(run_dir: Path, generation: int) -> None:
    """Drop the history rows after `generation` (written after the last checkpoint) and torn lines."""
    rows = [r for r in read_jsonl(Path(run_dir) / HISTORY)
            if isinstance(r, dict) and isinstance(r.get("generation"), int) and r["generation"] <= generation]
    write_jsonl(Path(run_dir) / HISTORY, rows)


def check_no_links(run_dir: Path) -> None:
    """CheckpointError if a run file is a symbolic link (a run directory writes only inside itself)."""
    for name in (EVENTS, HISTORY, CONFIG, RESULT, CHECKPOINT):
        if (Path(run_dir) / name).is_symlink():
            raise CheckpointError(f"{Path(run_dir) / name} is a symbolic link; a run directory writes only inside "
                                  "itself")


def real_subfolder(run_dir: str | Path, name: str) -> Path:
    """The folder `run_dir/name`, made if missing; CheckpointError (one line, nothing written) if it is a symbolic
    link or not a folder: a run directory's writers never write through a link to somewhere else."""
    path = Path(run_dir) / name
    if path.is_symlink():
        raise CheckpointError(f"{path} is a symbolic link; a run directory writes only inside itself: remove the link "
                              "(nothing was written)")
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path} is not a folder; remove it or move it away (nothing was written)")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create {path}: {exc.strerror or exc}") from None
    return path


def keep_events(run_dir: Path, lines: int | None) -> int:
    """Keep the first `lines` events of events.jsonl (None: all) and drop torn lines; returns how many are kept."""
    path = Path(run_dir) / EVENTS
    rows = [r for r in read_jsonl(path) if isinstance(r, dict)]
    kept = rows if lines is None else rows[:lines]
    if path.exists() or path.is_symlink():
        write_jsonl(path, kept)
    return len(kept)


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


def _is_temporary(name: str) -> bool:
    return name.endswith(TMP_SUFFIX) and any(name.startswith(f".{n}.") for n in (CONFIG, HISTORY, RESULT, CHECKPOINT))


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
    """Write `obj` as JSON atomically; CheckpointError (naming the file and the value) for a NaN or infinity."""
    atomic_write_bytes(path, (_dumps(path, obj, indent=2) + "\n").encode())


def _dumps(path: Path, obj: Any, **kwargs: Any) -> str:
    try:
        return safe_json.dumps(obj, **kwargs)
    except ValueError as exc:
        raise CheckpointError(f"refused to write {path}: {exc}") from None


def read_json(path: Path) -> Any:
    """A JSON file's content; CheckpointError (one line) when it is missing, not JSON or not a regular file."""
    try:
        return safe_json.loads(read_text(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); the file is corrupt") from None


def write_jsonl(path: Path, rows: list[Any]) -> None:
    """Rewrite a JSON-lines file atomically with `rows`."""
    atomic_write_bytes(path, "".join(_dumps(path, r) + "\n" for r in rows).encode())


def read_jsonl(path: Path) -> list[Any]:
    """All complete lines of a JSON-lines file (a line torn by a crash mid-append is skipped); [] when it is
    missing; NotRegularFile (one line) when it is a FIFO, a device or a folder."""
    path = Path(path)
    try:
        text = read_text(path, errors="replace")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(safe_json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def open_append(path: Path):
    """Open `path` for appending text lines, never through a symbolic link (a run directory writes only
    inside itself). A last line torn by a crash is ended first, so the next line starts cleanly."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
    except OSError as exc:
        if path.is_symlink():
            raise CheckpointError(f"{path} is a symbolic link; a run directory writes only inside itself") from None
        raise CheckpointError(f"cannot append to {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO would block the writer for ever
        os.close(fd)
        raise NotRegularFile(f"{path} is not a regular file (a FIFO, a device or a socket); nasviz writes only "
                             "regular files: remove it")
    os.set_blocking(fd, True)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
    return os.fdopen(fd, "a", encoding="utf-8")


def append_jsonl(path: Path, row: Any) -> None:
    """Append one JSON line to `path` (see `open_append`), flushed and fsync-ed (it is part of a run's state)."""
    line = _dumps(path, row) + "\n"
    with open_append(path) as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


class JsonlAppender:
    """Append JSON lines to a file, flushed after each line (a log: events, not state)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.file = open_append(path)

    def __call__(self, row: Any) -> None:
        self.file.write(_dumps(self.path, row) + "\n")
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
    try:
        file = open_regular(path)  # a FIFO or a device is refused, never waited on
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"no {kind} at {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read the {kind} {path}: {exc.strerror or exc}") from None
    try:
        with file, warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the error says it all
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True)
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
