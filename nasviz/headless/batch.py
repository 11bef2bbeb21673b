"""`python -m nasviz batch`: a notebook run once per point of a parameter grid, each into its own folder."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError, one_line, suggest
from nasviz.headless.execute import check_notebook, execute, notebook_parameters
from nasviz.runs import rundir


def parse_value(text: str) -> Any:
    """A command-line value: JSON where it parses (ints, floats, true/false, null, lists, dicts), else the text."""
    try:
        return json.loads(text)
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


def _run_point(notebook: str, folder: str, parameters: dict, threads: int | None) -> dict:
    """One grid point (runs in a worker process): papermill into `folder`."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    return execute(Path(notebook), Path(folder) / Path(notebook).name, parameters)


def cmd_batch(args: argparse.Namespace) -> int:
    notebook = check_notebook(args.notebook)
    grid = parse_grid(args.grid)
    fixed = _fixed_parameters(args, grid)
    declared = _declared_parameters(notebook, [*grid, *fixed])
    out = Path(rundir.check_path(args.out)).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    points = _plan_points(out, grid, fixed, declared)
    _check_run_dirs(points, "out" in fixed)
    _check_free(out, points)
    if args.backend == "ray":  # before anything is written: Ray installed, the cluster reachable, CPUs possible
        from nasviz.headless.ray_backend import RayBackend

        ray_backend = RayBackend(args)
    _claim(out, points)

    start = time.perf_counter()
    outcomes: dict[str, dict] = {}

    def finished(name: str, outcome: dict) -> None:
        outcomes[name] = outcome
        tail = "" if outcome["status"] == "ok" else f": {outcome['error']}"
        print(f"[{len(outcomes)}/{len(points)}] {name}: {outcome['status']} ({outcome['seconds']} s){tail}",
              flush=True)

    if args.backend == "ray":
        jobs = args.jobs
        ray_backend.run(notebook, points, out, finished)
    else:
        jobs = min(args.jobs or 1, len(points))
        print(f"batch: {len(points)} run(s) of {notebook.name}, {jobs} at a time, into {out}", flush=True)
        _run_local(notebook, points, jobs, finished)
    records = [_record(p, notebook, outcomes) for p in points]
    failed = [r for r in records if r["status"] != "ok"]
    summary = {"notebook": str(notebook), "grid": {k: [v for _t, v in vs] for k, vs in grid.items()},
               "fixed": fixed, "backend": args.backend, "jobs": jobs, "points": records, "failed": len(failed),
               "seconds": round(time.perf_counter() - start, 1)}
    rundir.write_json(out / rundir.BATCH, summary)
    print(summary_table(records))
    print(f"{len(records) - len(failed)} ok, {len(failed)} failed; summary in {out / rundir.BATCH}")
    return 1 if failed else 0


def _fixed_parameters(args: argparse.Namespace, grid: dict) -> dict[str, Any]:
    """The `-p` parameters (the same for every point), after checking the grid, --jobs and the backend options."""
    if not grid:
        raise ConfigError("batch needs at least one --grid KEY=V1,V2,...")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs} is out of range; allowed: an integer >= 1")
    if args.backend == "local" and (args.address is not None or args.cpus_per_run is not None):
        raise ConfigError(f"--{'address' if args.address is not None else 'cpus-per-run'} is for --backend ray only")
    fixed: dict[str, Any] = {}
    for key, value in args.parameter:
        if not key.isidentifier():
            raise ConfigError(f"-p {key!r}: a parameter name is a Python identifier")
        if key in grid:
            raise ConfigError(f"parameter {key!r} is given both in --grid and -p")
        fixed[key] = parse_value(value)
    return fixed


def _declared_parameters(notebook: Path, keys: list[str]) -> dict:
    """The notebook's declared parameters; `ConfigError` if it has none or lacks one of `keys`."""
    declared = notebook_parameters(notebook)
    if not declared:
        raise ConfigError(f"notebook {str(notebook)!r} has no cell tagged 'parameters'")
    for key in keys:
        if key not in declared:
            raise ConfigError(f"{notebook.name} has no parameter {key!r}{suggest(key, list(declared))}; "
                              f"allowed: {', '.join(declared)}")
    return declared


def _plan_points(out: Path, grid: dict, fixed: dict[str, Any], declared: dict) -> list[dict]:
    """One point per combination of the grid's values: its name, folder and parameters (a run folder under the
    point's folder for a notebook with an `out` parameter, `live` off where the notebook has it)."""
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


def _claim(out: Path, points: list[dict]) -> None:
    """Make and lock the batch folder (held until the process ends), check again under the lock that the points'
    folders are free, then write each point's parameters."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {str(out)!r}: {exc.strerror or exc}") from None
    rundir.lock(out, "batch folder")  # one batch writes a folder at a time (this process holds it until it ends)
    _check_free(out, points)  # again, under the lock
    for point in points:
        point["folder"].mkdir(parents=True, exist_ok=True)
        rundir.write_json(point["folder"] / rundir.PARAMETERS, point["parameters"])


def _record(point: dict, notebook: Path, outcomes: dict[str, dict]) -> dict:
    """The summary's entry for one point: its name, folder, parameters, executed notebook and outcome."""
    outcome = outcomes.get(point["name"], {"status": "not run", "error": None, "seconds": None})
    return {"name": point["name"], "folder": str(point["folder"]), "parameters": point["parameters"],
            "notebook": str(point["folder"] / notebook.name), **outcome}


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


def _run_local(notebook: Path, points: list[dict], jobs: int, finished: Callable[[str, dict], None]) -> None:
    """The default backend: the points in a pool of `jobs` spawned processes on this machine."""
    import concurrent.futures as cf
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_point, str(notebook.resolve()), str(p["folder"]), p["parameters"], threads):
                   p["name"] for p in points}
        try:
            for future in cf.as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker process died
                    outcome = {"status": "failed", "error": f"{type(exc).__name__}: {one_line(exc)}",
                               "seconds": None}
                finished(futures[future], outcome)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


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


def _check_free(out: Path, points: list[dict]) -> None:
    """Refuse an `out` that holds a batch or a point's results (results are never overwritten)."""
    taken = [p["name"] for p in points if p["folder"].exists() and any(p["folder"].iterdir())]
    if taken:
        raise ConfigError(f"{out} already holds results for {taken[0]!r}; choose another --out (results are never "
                          "overwritten)")
    if (out / rundir.BATCH).exists():
        raise ConfigError(f"{out} already holds a batch ({rundir.BATCH}); choose another --out")


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
