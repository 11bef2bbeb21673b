"""notebooks: wall time of each notebook of the series, run headless with papermill at one preset.

The timings a teacher plans a class with: each notebook is executed by papermill (a fresh kernel, headless, as
`python -m nasviz batch` runs it) in order, 01 to 07, in a temporary folder; 04 trains the contenders of the
search 03 just made, 06 reads the runs 03 and 05 wrote. 07 needs the ground-truth table of the mini space: it is
skipped (and listed under `skipped`) where that table is not installed. Reported per notebook: seconds (kernel
start included) and status; the figure is the total. `keep=DIR` keeps the executed notebooks there (e.g. for
docs/screenshots/make_screenshots.py).

    python -m benchmarks notebooks                      # the class preset (the default here)
    python -m benchmarks notebooks --set preset=quick   # the notebooks' own default preset
    python -m benchmarks notebooks --quick              # smoke preset: does every notebook run?
    python -m benchmarks notebooks --set busy=1         # the class preset with one other process busy

`busy=N` keeps N other single-threaded processes spinning for the whole run: a classroom machine where
something else is running (a browser, a second notebook).

Parameters per notebook: `preset` (and `live=False` for 03); 05 keeps its own small-search `overrides` except
at smoke, where it gets `overrides={}` (its documented dry run); 04 and 05 keep their from-scratch budgets
(`--quick` and `tiny` shrink them). No goal: the numbers are for the notebooks' and the teacher's guide's
stated times, which must match a measurement.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

NAMES = ("01_search_space.ipynb", "02_supernet.ipynb", "03_search.ipynb", "04_train_from_scratch.ipynb",
         "05_ablation.ipynb", "06_compare_runs.ipynb", "07_ground_truth.ipynb")
TABLE = "mini-fashion-mnist"
"""The ground-truth table 07 reads by default."""
SCRATCH_QUICK = {"epochs": 1, "channels": 4, "layers": 3, "train_size": 512, "test_size": 500, "batch_size": 32}
SCRATCH_TINY = {"epochs": 1, "channels": 4, "layers": 3, "train_size": 128, "test_size": 128, "batch_size": 32}


def parameters(name: str, preset: str, tmp: Path, *, quick: bool, tiny: bool) -> dict[str, Any]:
    """papermill parameters of notebook `name` at `preset`, its outputs under `tmp`."""
    search = {k: v for k, v in common.TINY_SEARCH.items() if k != "checkpoint_every"} if tiny else {}
    scratch = SCRATCH_TINY if tiny else SCRATCH_QUICK if quick else {}
    if name.startswith("01"):
        return {"preset": preset}
    if name.startswith("02"):
        return {"preset": preset, **({"warmup_steps": 8, "overrides": search} if tiny else {})}
    if name.startswith("03"):
        return {"preset": preset, "live": False, "out": str(tmp / "search"), "overrides": search}
    if name.startswith("04"):
        run_dir = tmp / "search"
        return {"preset": preset, "run_dir": str(run_dir) if (run_dir / "checkpoint.pt").is_file() else None,
                "overrides": search, "out": str(tmp / "scratch"), **scratch}
    if name.startswith("05"):
        extra = {"overrides": search} if tiny else {"overrides": {}} if preset == "smoke" else {}
        if tiny:
            extra.update(variants=["sft-ga", "random"], kendall_archs=3)
        return {"preset": preset, "out": str(tmp / "ablation"), **extra, **({"scratch": scratch} if scratch else {})}
    if name.startswith("06"):
        return {"runs_dir": str(tmp), "preset": preset}
    extra = {"overrides": search, "ranking_sample": 6, "table_searches": 5} if tiny else {}
    return {"preset": preset, "out": str(tmp / "ground_truth"), **extra}


def _skip(name: str) -> str | None:
    """Why notebook `name` cannot run here (07 without its ground-truth table), or None."""
    from nasviz import table

    if name.startswith("07") and TABLE not in table.available():
        return f"skipped: the ground-truth table {TABLE!r} is not installed (nasviz/table/data/)"
    return None


def run(quick: bool = False, *, tiny: bool = False, preset: str | None = None,
        notebooks: list[str] | None = None, keep: str | None = None, busy: int = 0) -> dict[str, Any]:
    from nasviz.headless.execute import execute, notebook_dir

    started, load_before = common.now(), common.loadavg()
    preset = preset or ("smoke" if quick or tiny else "class")
    chosen = [n for n in NAMES if notebooks is None or n in notebooks or n[:2] in notebooks]
    if not chosen:
        raise ValueError(f"notebooks={notebooks!r} names none of {', '.join(NAMES)} (or their numbers 01..07)")
    timings: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="nasviz-bench-notebooks-") as tmp, common.busy_processes(busy):
        folder = Path(tmp)
        for name in chosen:
            if (why := _skip(name)) is not None:
                skipped[name] = why
                continue
            params = parameters(name, preset, folder, quick=quick, tiny=tiny)
            outcome = execute(notebook_dir() / name, folder / name, params, cwd=folder)
            timings[name] = {"seconds": outcome["seconds"], "status": outcome["status"], "error": outcome["error"],
                             "parameters": params}
            if keep is not None and (folder / name).is_file():
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(folder / name, Path(keep) / name)
    for record in timings.values():  # the temporary folder is gone: keep the parameters readable, not its path
        record["parameters"] = {k: (Path(v).name if isinstance(v, str) and v.startswith(tmp) else v)
                                for k, v in record["parameters"].items()}
    total = sum(t["seconds"] for t in timings.values())
    failed = [n for n, t in timings.items() if t["status"] != "ok"]
    return common.result(
        "notebooks",
        figure=f"wall time of the notebooks at the {preset} preset (papermill, kernel start included)",
        value=common.rounded(total, 1),
        unit="s",
        goal=None,
        met=None,
        inputs={"preset": preset, "notebooks": chosen, "quick": quick, "tiny": tiny, "kept": keep, "busy": busy},
        results={"seconds": {n: t["seconds"] for n, t in timings.items()}, "failed": failed, "skipped": skipped,
                 "runs": timings},
        load_before=load_before,
        started=started,
        notes=["each notebook in a fresh kernel, in order; the load average tells how busy the machine was: on a "
               "loaded 2-core machine expect up to 4x the idle times (docs/benchmarks.md)"],
    )
