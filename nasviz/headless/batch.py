"""`python -m nasviz batch`: a notebook run once per point of a parameter grid, each into its own folder."""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError, one_line, suggest
from nasviz.headless.execute import check_notebook, execute, notebook_parameters
from nasviz.options import EXIT_INTERRUPTED
from nasviz.runs import rundir, safe_json
from nasviz.runs.folder_claim import claim_folder


def parse_value(text: str) -> Any:
    """A command-line value: JSON where it parses (ints, floats, true/false, null, lists, dicts), else the text."""
    try:
        return safe_json.loads(text)
    except ValueError:
        return text


def parse_grid(specs: Sequence[str]) -> dict[str, list[tuple[str, Any]]]:
    """`key=v1,v2` specs into {key: [(text, value), ...]}; one-line ConfigError on bad syntax."""
    grid: dict[str, list[tuple[str, Any]]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"--grid {spec!r} is not KEY=V1,V2,... (KEY a parameter name)")
        texts = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not t for t in texts):
            raise ConfigError(f"--grid {spec!r} has an empty value; write KEY=V1,V2,...")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; put all its values in one --grid {key}=V1,V2,...")
        values = [parse_value(t) for t in texts]
        if len(set(texts)) != len(texts) or len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"--grid {spec!r} repeats a value")
        grid[key] = list(zip(texts, values))
    return grid


def point_name(texts: dict[str, str]) -> str:
    """Folder name of a grid point: key=value,key=value (characters unsafe in file names become '_'; a name too
    long for a file system is cut and ends in a hash of the whole)."""
    name = ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+=@-]', '_', v)}" for k, v in texts.items())
    if len(name.encode()) > MAX_NAME:
        name = f"{name[: MAX_NAME - 12]}~{_digest(name)}"
    return name


def point_names(points: Sequence[dict[str, str]]) -> list[str]:
    """One folder name per grid point (`point_name`), never two alike, even on a file system that ignores case:
    where names clash, a point whose values were changed to make its name gets a hash of its values, and any
    clash left gets -2, -3, ... in grid order."""
    names = [point_name(t) for t in points]
    counts = Counter(n.casefold() for n in names)
    names = [n if counts[n.casefold()] == 1 or n == _plain(t) else f"{n}~{_digest(_plain(t))}"
             for n, t in zip(names, points)]
    unique, used = [], set()
    for name in names:
        candidate, k = name, 2
        while candidate.casefold() in used:
            candidate, k = f"{name}-{k}", k + 1
        used.add(candidate.casefold())
        unique.append(candidate)
    return unique


MAX_NAME = 200
"""Longest point folder name, in bytes (file systems allow 255)."""


def _plain(texts: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in texts.items())


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


INTERRUPTED = "interrupted"
"""The status of a point that Ctrl-C stopped (the batch can be run again: see `_check_free`)."""


_worker = {"running": False, "stopped": False}
"""A worker process's state: whether a notebook runs, whether Ctrl-C came (then it starts no more)."""


def _detach() -> None:
    """A worker process (and the notebook kernels it starts) leaves the terminal's process group, so Ctrl-C
    reaches the batch process only, which passes it on to the workers (`_run_local`)."""
    os.setsid()
    signal.signal(signal.SIGINT, _on_sigint)


def _on_sigint(signum, frame) -> None:
    """In a worker: stop the notebook running (KeyboardInterrupt in `_run_point`) and start no more."""
    _worker["stopped"] = True
    if _worker["running"]:
        raise KeyboardInterrupt


def _run_point(notebook: str, folder: str, parameters: dict, threads: int | None) -> dict:
    """One grid point (runs in a worker process): papermill into `folder`; Ctrl-C during it is the outcome
    'interrupted', not a worker's traceback."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    start = time.perf_counter()
    if _worker["stopped"]:
        return {"status": INTERRUPTED, "error": "not started (Ctrl-C)", "seconds": None}
    _worker["running"] = True
    with tempfile.TemporaryFile() as log:  # what the notebook's kernel and client say on stderr, passed on below
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)
        interrupted = False
        try:
            return execute(Path(notebook), Path(folder) / Path(notebook).name, parameters)
        except KeyboardInterrupt:
            interrupted = True
            return {"status": INTERRUPTED, "error": "stopped by Ctrl-C",
                    "seconds": round(time.perf_counter() - start, 1)}
        finally:
            _worker["running"] = False
            if interrupted:
                gc.collect()  # the interrupted client's tasks complain when collected: into the log, too
            os.dup2(saved, 2)
            os.close(saved)
            if not interrupted:  # an interrupted kernel's complaints are no news: the outcome says it
                log.seek(0)
                os.write(2, log.read())


def cmd_batch(args: argparse.Namespace) -> int:
    """`python -m nasviz batch`: check everything before anything is written (one-line ConfigError), claim --out,
    prepare the points' folders, run the points, write batch.json and sum up. Returns 0, 1 if a point failed, or
    EXIT_INTERRUPTED after Ctrl-C (the same command then continues the batch: its finished points are kept)."""
    notebook = check_notebook(args.notebook)
    grid = parse_grid(args.grid)
    _check_options(args, grid)
    fixed = _fixed_parameters(args.parameter, grid)
    declared = _declared_parameters(notebook, [*grid, *fixed])
    out = _batch_folder(args.out)
    points = _points(out, grid, fixed, declared)
    _check_run_dirs(points, "out" in fixed)
    summary_of = {"notebook": str(notebook), "grid": {k: [v for _t, v in vs] for k, vs in grid.items()},
                  "fixed": fixed}
    _check_free(out, points, summary_of)
    ray_backend = _ray_backend(args)  # before anything is written: Ray installed, the cluster reachable, CPUs possible
    # one batch writes a folder at a time; checked again under the lock (an interrupted run of this very batch
    # continues: its finished points are kept)
    found: list[dict[str, dict] | None] = []
    with claim_folder(out, "batch folder", check=lambda *_: found.append(_check_free(out, points, summary_of))):
        done_before = found[0]
        _prepare_folders(out, points, done_before)
        start = time.perf_counter()
        outcomes, jobs, interrupted = _run_points(args, ray_backend, notebook, points, out, done_before)
        records = _records(points, outcomes, notebook, interrupted)
        failed = [r for r in records if r["status"] != "ok"]
        rundir.write_json(out / rundir.BATCH, {**summary_of, "backend": args.backend, "jobs": jobs, "points": records,
                                               "failed": len(failed), "interrupted": interrupted,
                                               "seconds": round(time.perf_counter() - start, 1)})
        return _sum_up(out, records, len(failed), interrupted)


def _check_options(args: argparse.Namespace, grid: dict) -> None:
    """Refuse an empty grid, a --jobs below 1 and options of the other backend (Ray's own, before Ray starts)."""
    if not grid:
        raise ConfigError("batch needs at least one --grid KEY=V1,V2,...")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs} is out of range; allowed: an integer >= 1")
    if args.backend == "local" and (args.address is not None or args.cpus_per_run is not None):
        raise ConfigError(f"--{'address' if args.address is not None else 'cpus-per-run'} is for --backend ray only")
    if args.backend == "ray":
        from nasviz.headless.ray_backend import check_options

        check_options(args)  # before the notebook is read (papermill) and long before Ray starts


def _fixed_parameters(pairs: Sequence[tuple[str, str]], grid: dict) -> dict[str, Any]:
    """The -p KEY VALUE parameters set for every point (names are identifiers, none also in the grid)."""
    fixed: dict[str, Any] = {}
    for key, value in pairs:
        if not key.isidentifier():
            raise ConfigError(f"-p {key!r}: a parameter name is a Python identifier")
        if key in grid:
            raise ConfigError(f"parameter {key!r} is given both in --grid and -p")
        fixed[key] = parse_value(value)
    return fixed


def _declared_parameters(notebook: Path, keys: Sequence[str]) -> dict[str, Any]:
    """The parameters `notebook` declares (its cell tagged 'parameters'); every one of `keys` must be among them."""
    declared = notebook_parameters(notebook)
    if not declared:
        raise ConfigError(f"notebook {str(notebook)!r} has no cell tagged 'parameters'")
    for key in keys:
        if key not in declared:
            raise ConfigError(f"{notebook.name} has no parameter {key!r}{suggest(key, list(declared))}; "
                              f"allowed: {', '.join(declared)}")
    return declared


def _batch_folder(out: str) -> Path:
    """--out as a path (checked; it may not be a file)."""
    folder = Path(rundir.check_path(out)).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {str(folder)!r} exists and is not a folder")
    return folder


def _points(out: Path, grid: dict[str, list[tuple[str, Any]]], fixed: dict[str, Any],
            declared: dict[str, Any]) -> list[dict]:
    """One point per combination of the grid's values: its name, folder and parameters (a notebook's `out`: the
    point's run/ folder, and `live`: False, unless given)."""
    combos = list(itertools.product(*grid.values()))
    names = point_names([{k: t for k, (t, _v) in zip(grid, combo)} for combo in combos])
    points = []
    for name, combo in zip(names, combos):
        folder = out / name
        parameters = {**fixed, **{k: v for k, (_t, v) in zip(grid, combo)}}
        if "out" in declared and "out" not in parameters:
            parameters["out"] = str((folder / rundir.RUN_SUBDIR).resolve())
        if "live" in declared and "live" not in parameters:
            parameters["live"] = False
        points.append({"name": name, "folder": folder, "parameters": parameters})
    return points


def _ray_backend(args: argparse.Namespace) -> Any:
    """With --backend ray, the Ray backend (Ray installed, the cluster reachable, the CPUs possible); else None."""
    if args.backend != "ray":
        return None
    from nasviz.headless.ray_backend import RayBackend

    return RayBackend(args)


def _prepare_folders(out: Path, points: list[dict], done_before: dict[str, dict] | None) -> None:
    """Give every point left to run a fresh folder with its parameters.json (what an interrupted point left there
    is set aside); say so where an interrupted batch continues."""
    if done_before is not None:
        print(f"batch: continuing the interrupted batch in {out}: {len(done_before)} point(s) done, kept", flush=True)
    for point in points:
        if done_before is not None and point["name"] in done_before:
            continue
        _set_aside(point["folder"])
        point["folder"].mkdir(parents=True, exist_ok=True)
        rundir.write_json(point["folder"] / rundir.PARAMETERS, point["parameters"])


def _run_points(args: argparse.Namespace, ray_backend: Any, notebook: Path, points: list[dict], out: Path,
                done_before: dict[str, dict] | None) -> tuple[dict[str, dict], int | None, bool]:
    """Run the points not done before on the backend, printing a line as each finishes; returns every point's
    outcome so far, the jobs that ran at a time and whether Ctrl-C interrupted the batch."""
    outcomes: dict[str, dict] = dict(done_before or {})
    todo = [p for p in points if p["name"] not in outcomes]

    def finished(name: str, outcome: dict) -> None:
        outcomes[name] = outcome
        tail = "" if outcome["status"] == "ok" else f": {outcome['error']}"
        print(f"[{len(outcomes)}/{len(points)}] {name}: {outcome['status']} ({outcome['seconds']} s){tail}",
              flush=True)

    if ray_backend is not None:
        ray_backend.run(notebook, todo, out, finished)
        return outcomes, args.jobs, False
    jobs = max(1, min(args.jobs or 1, len(todo)))
    print(f"batch: {len(todo)} run(s) of {notebook.name}, {jobs} at a time, into {out}", flush=True)
    interrupted = _run_local(notebook, todo, jobs, finished)
    return outcomes, jobs, interrupted


def _records(points: list[dict], outcomes: dict[str, dict], notebook: Path, interrupted: bool) -> list[dict]:
    """batch.json's "points": each point's name, folder, parameters, executed notebook and outcome ('interrupted'
    or 'not run' where it has none)."""
    records = []
    for p in points:
        o = outcomes.get(p["name"], {"status": INTERRUPTED if interrupted else "not run", "error": None,
                                     "seconds": None})
        records.append({"name": p["name"], "folder": str(p["folder"]), "parameters": p["parameters"],
                        "notebook": str(p["folder"] / notebook.name), **o})
    return records


def _sum_up(out: Path, records: list[dict], failed: int, interrupted: bool) -> int:
    """Print the batch's table and how it went; returns the exit code."""
    print(summary_table(records))
    if interrupted:
        print(f"batch interrupted: {len(records) - failed} ok; summary in {out / rundir.BATCH}; run the same "
              "command again to run the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{len(records) - failed} ok, {failed} failed; summary in {out / rundir.BATCH}")
    return 1 if failed else 0


def run_batch(grid: dict[str, Sequence[Any]], out: str | Path, parameters: dict[str, Any] | None = None,
              notebook: str | Path | None = None, jobs: int = 1) -> int:
    """`python -m nasviz batch` from Python (a notebook cell, any working folder): run `notebook` (default: the
    repository's 03_search.ipynb) once per point of `grid`, with `parameters` for every point, into `out`.

        run_batch({"seed": [0, 1, 2], "method": ["sft-ga", "random"]}, "runs/sweep", {"preset": "smoke"})

    Prints one line per finished point; returns 0, or 1 if a point failed. Bad input: one-line ConfigError."""
    from nasviz.headless.execute import MAIN_NOTEBOOK, notebook_dir

    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    args = argparse.Namespace(
        notebook=str(notebook if notebook is not None else notebook_dir() / MAIN_NOTEBOOK),
        grid=[f"{key}={','.join(text(v) for v in values)}" for key, values in grid.items()],
        out=str(out), jobs=jobs, parameter=[(key, text(value)) for key, value in (parameters or {}).items()],
        backend="local", address=None, cpus_per_run=None)
    return cmd_batch(args)


def _run_local(notebook: Path, points: list[dict], jobs: int, finished: Callable[[str, dict], None]) -> bool:
    """The default backend: the points in a pool of `jobs` spawned processes on this machine. Ctrl-C stops the
    running notebooks (each reports 'interrupted') and starts no more; returns whether that happened."""
    import concurrent.futures as cf
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    interrupted = False
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_detach) as pool:
        futures = {pool.submit(_run_point, str(notebook.resolve()), str(p["folder"]), p["parameters"], threads):
                   p["name"] for p in points}
        pending = set(futures)
        while pending:
            try:
                for future in cf.as_completed(pending):
                    pending.discard(future)
                    if future.cancelled():
                        continue
                    try:
                        outcome = future.result()
                    except Exception as exc:  # the worker process died
                        outcome = {"status": "failed", "error": f"{type(exc).__name__}: {one_line(exc)}",
                                   "seconds": None}
                    if outcome.get("status") == INTERRUPTED:
                        interrupted = True
                    finished(futures[future], outcome)
            except KeyboardInterrupt:  # stop the running notebooks (each reports 'interrupted'), start no more
                interrupted = True
                for future in pending:
                    future.cancel()
                pending = {f for f in pending if not f.cancelled()}
                for process in list(getattr(pool, "_processes", {}).values()):
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, signal.SIGINT)
    return interrupted


def _check_run_dirs(points: list[dict], fixed_out: bool) -> None:
    """Refuse points that would write into one run directory (an `out` parameter shared or repeated)."""
    if fixed_out and len(points) > 1:
        raise ConfigError("-p out gives every point the same run directory; leave out to batch (each point gets "
                          "OUT/<point>/run) or give --grid out=DIR1,DIR2,...")
    seen: dict[str, str] = {}
    for point in points:
        out = point["parameters"].get("out")
        if not isinstance(out, str):
            continue
        key = os.path.normcase(os.path.abspath(os.path.expanduser(rundir.check_path(out))))
        if key in seen:
            raise ConfigError(f"points {seen[key]!r} and {point['name']!r} would write the same run directory "
                              f"{out!r}; give each point its own")
        seen[key] = point["name"]


def _check_free(out: Path, points: list[dict], summary_of: dict) -> dict[str, dict] | None:
    """Refuse an `out` that holds a batch or a point's results (results are never overwritten), unless it holds
    this very batch, interrupted: then returns the outcomes of its points that finished (they are kept; the others
    run again, their partial folders set aside). None: a new batch."""
    linked = [p["folder"] for p in points if p["folder"].is_symlink()]
    if linked:
        raise ConfigError(f"{linked[0]} is a symbolic link; a batch writes only inside --out {out}: remove the link")
    previous = rundir.read_json_or_none(out / rundir.BATCH) if (out / rundir.BATCH).exists() else None
    if isinstance(previous, dict) and previous.get("interrupted") is True and all(
            previous.get(k) == v for k, v in summary_of.items()):
        records = previous.get("points") if isinstance(previous.get("points"), list) else []
        return {r["name"]: {k: r.get(k) for k in ("status", "error", "seconds")} for r in records
                if isinstance(r, dict) and r.get("status") == "ok" and isinstance(r.get("name"), str)}
    taken = [p["name"] for p in points if p["folder"].exists() and any(p["folder"].iterdir())]
    if taken:
        raise ConfigError(f"{out} already holds results for {taken[0]!r}; choose another --out (results are never "
                          "overwritten)")
    if (out / rundir.BATCH).exists():
        raise ConfigError(f"{out} already holds a batch ({rundir.BATCH}); choose another --out")
    return None


def _set_aside(folder: Path) -> None:
    """Rename what an interrupted point left in `folder` to `folder-interrupted-<time>` (nothing is deleted)."""
    if folder.exists() and {p.name for p in folder.iterdir()} - {rundir.PARAMETERS}:
        folder.rename(rundir.fresh_sibling(folder, "interrupted-" + time.strftime("%Y%m%d-%H%M%S")))


def summary_table(records: Iterable[dict]) -> str:
    """A plain-text table of a batch: point, status, seconds, error."""
    rows = [("point", "status", "seconds", "error")]
    rows += [(r["name"], r["status"], "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["error"] or "")
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_batch_command(subparsers) -> None:
    p = subparsers.add_parser(
        "batch", help="run a notebook once per point of a parameter grid (papermill)",
        description="Run NOTEBOOK with papermill once per combination of the --grid values, each into "
                    "OUT/<key=value,...>/ (the executed notebook and parameters.json; a notebook with an `out` "
                    "parameter gets OUT/<point>/run). Values are JSON where they parse, else text. A failing point "
                    "is reported and the others go on; OUT/batch.json sums up; exit code 1 if any point failed.")
    p.add_argument("notebook", help="the notebook, e.g. notebooks/03_search.ipynb")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a parameter and its values (repeat for a product of grids)")
    p.add_argument("--out", required=True, help="folder that receives one subfolder per grid point")
    p.add_argument("--jobs", type=int, default=None,
                   help="notebooks run at the same time (default: 1 locally; with Ray, as many as its CPUs allow)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine (default); ray: one Ray task per point, the files "
                        "sent back to this machine (pip install 'nasviz[ray]')")
    p.add_argument("--address", default=None,
                   help="with --backend ray: join this Ray cluster (e.g. 10.0.0.1:6379); default: start a local "
                        "Ray instance")
    p.add_argument("--cpus-per-run", type=int, default=None, metavar="K",
                   help="with --backend ray: CPUs reserved by, and threads used by, each run (default 1)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a parameter set for every point")
    p.set_defaults(func=cmd_batch)
