"""`python -m nasviz demo`: the main notebook, headless, into runs/demo/ (executed notebook, HTML, run files)."""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError
from nasviz.headless.batch import parse_value
from nasviz.headless.execute import (
    MAIN_NOTEBOOK,
    check_notebook,
    execute,
    export_html,
    notebook_dir,
    notebook_parameters,
)
from nasviz.options import parse_settings
from nasviz.runs import rundir
from nasviz.runs.folder_claim import claim_folder

DEMO_OUTPUTS = (rundir.RUN_SUBDIR, MAIN_NOTEBOOK, MAIN_NOTEBOOK.replace(".ipynb", ".html"))


def move_aside(out: Path) -> Path | None:
    """Move a previous demo's outputs in `out` (run/, the notebook, its HTML) into `out/previous-<time>/`."""
    present = [out / name for name in DEMO_OUTPUTS if (out / name).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in present)))
    target = rundir.fresh_sibling(out / "previous", stamp)
    target.mkdir(parents=True)
    for path in present:
        shutil.move(str(path), str(target / path.name))
    return target


def cmd_demo(args: argparse.Namespace) -> int:
    from nasviz.data.datasets import check_dataset_name
    from nasviz.search.config import SearchConfig

    notebook = check_notebook(args.notebook or notebook_dir() / MAIN_NOTEBOOK)
    dataset = check_dataset_name(args.dataset)
    out = Path(rundir.check_path(args.out)).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    overrides = _settings(args.set)
    for key in ("dataset", "seed", "preset", "method"):
        if key in overrides:
            raise ConfigError(f"--set {key}=... is not allowed here; use --{key}" if key != "method" else
                              "--set method=... is not allowed: the demo runs the method (sft-ga); use "
                              "python -m nasviz batch for the baselines")
    SearchConfig.from_preset(args.preset, dataset=dataset, seed=args.seed, **overrides)  # one-line error if wrong
    with claim_folder(out, "demo folder"):  # one demo writes a folder at a time
        previous = move_aside(out)
        if previous is not None:
            print(f"moved the previous demo's files to {previous}")
        run_dir = (out / rundir.RUN_SUBDIR).resolve()
        executed = out / notebook.name
        page = executed.with_suffix(".html")
        parameters = {"dataset": dataset, "preset": args.preset, "seed": args.seed, "out": str(run_dir), "live": False,
                      "overrides": overrides}
        declared = notebook_parameters(notebook)
        parameters = {k: v for k, v in parameters.items() if k in declared}
        expected = {"smoke": "under a minute", "quick": "a few minutes on a CPU", "paper": "many hours: use a GPU"}
        print(f"running {notebook} headless ({args.preset} preset, {dataset}, seed {args.seed}); this takes "
              f"{expected.get(args.preset, 'a while')}", flush=True)
        _log_notebook_output()
        status = execute(notebook, executed, parameters, log_output=True)
        if executed.exists():
            export_html(executed, page)
        if status["status"] != "ok":
            print(f"nasviz: error: the notebook failed after {status['seconds']:.0f} s: {status['error']}; "
                  f"see {executed}", file=sys.stderr)
            return 1
        result = rundir.load_result(run_dir) or {}
        print(f"\ndemo finished in {status['seconds']:.0f} s: best fitness {result.get('best_fitness')}\n"
              f"  notebook  {executed}\n  HTML      {page}\n  run files {run_dir}")
        return 0


def _settings(pairs: Sequence[str]) -> dict[str, Any]:
    """`--set key=value` pairs into a dict (values typed as JSON where they parse, else text)."""
    return {key: parse_value(value) for key, value in parse_settings(pairs).items()}


def _log_notebook_output() -> None:
    """Show papermill's log (each cell's start and its output) on stdout, without timestamps."""

    noise = re.compile(r"^(Executing Cell|Ending Cell|Executing notebook with kernel|<IPython\.core\.display\.\w+ "
                       r"object>|<Figure size|Input Notebook|Output Notebook)")
    logger = logging.getLogger("papermill")
    if not any(getattr(h, "_nasviz", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(lambda record: bool(record.getMessage().strip())
                          and not noise.match(record.getMessage().strip()))
        handler._nasviz = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def add_demo_command(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main notebook headless (papermill) and export it to HTML",
                              description="Run notebooks/03_search.ipynb headless with papermill; write the executed "
                                          "notebook, an HTML export and the run's files to --out.")
    p.add_argument("--preset", default="quick", help="smoke, class, quick (default) or paper")
    p.add_argument("--dataset", default="fashion-mnist", help="dataset to search on (default fashion-mnist)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); earlier demo files in it "
                                                       "are moved to a previous-<time>/ subfolder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one search setting (the notebook's `overrides`), e.g. --set population=6")
    p.add_argument("--notebook", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)
