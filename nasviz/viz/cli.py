"""`python -m nasviz render ...` and `python -m nasviz report ...`: subcommands registered by nasviz.cli."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nasviz.errors import ConfigError, NasvizError, one_line
from nasviz.runs import rundir
from nasviz.runs.out_file import check_out_file, write_out_file

RENDER_FORMATS = ("svg", "png", "pdf", "dot")


def add_render_command(sub) -> None:
    """Add `render --genotype TEXT|FIXTURE|RUN_DIR --out FILE.svg|.png|.pdf|.dot [--cell normal|reduce|both]`."""
    p = sub.add_parser("render", help="draw a genotype's cells (Graphviz): SVG, PNG, PDF or DOT text")
    p.add_argument("--genotype", required=True,
                   help="DARTS genotype text, a fixture name (DARTS_V2) or a run directory (its best genotype)")
    p.add_argument("--out", required=True, help="output file; its suffix picks the format: .svg, .png, .pdf, .dot; "
                                                "an existing file is refused")
    p.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    p.add_argument("--cell", choices=("normal", "reduce", "both"), default="both",
                   help="which cell to draw (default: both, side by side)")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from nasviz.viz.cells import dot_text, render

    out = check_out_file(args.out, args.force)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in RENDER_FORMATS:
        raise ConfigError(f"--out {out}: unknown format {out.suffix or '(no suffix)'!r}; "
                          f"allowed: {', '.join('.' + f for f in RENDER_FORMATS)}")
    genotype = rundir.genotype_from(args.genotype)
    cell = None if args.cell == "both" else args.cell
    data = dot_text(genotype, cell).encode() if fmt == "dot" else render(genotype, fmt, cell)
    write_out_file(out, data, args.force)
    print(out)
    return 0


def add_report_command(sub) -> None:
    """Add `report RUN_DIR`: every figure as HTML, report.html and the best cells, into the run directory."""
    p = sub.add_parser("report", help="write a run's figures (HTML), report.html and best cells (SVG)")
    p.add_argument("run_dir", help="a run directory (running or finished)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from nasviz.viz.report import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} {'is not a folder' if run_dir.exists() else 'does not exist'}")
    if not rundir.load_history(run_dir, check=True):
        raise ConfigError(f"{run_dir} is not a run directory with a recorded generation ({rundir.HISTORY}): nothing "
                          "to report yet")
    rundir.load_result(run_dir)  # JSON that is not an object: an error naming the file
    for note in result_notes(run_dir):
        print(f"nasviz: note: {note}", file=sys.stderr)
    for path in write_report(run_dir):
        print(path)
    return 0


def result_notes(run_dir: Path) -> list[str]:
    """What the report cannot use of result.json, one note each: not JSON, JSON but not an object, or fields of
    the wrong type (which the report leaves out)."""
    from nasviz.viz.report import RESULT_FACTS, typed_result

    path = run_dir / rundir.RESULT
    if not path.exists():
        return []
    try:
        value = rundir.read_json(path)
    except NasvizError:
        return [f"{path} is not JSON (damaged); the report leaves out its facts"]
    if not isinstance(value, dict):
        return []  # refused by `rundir.load_result`
    wrong = [k for k in RESULT_FACTS if k in value and k not in typed_result(value)]
    return [f"{path} has {k}={one_line(repr(value[k]), 40)}, not {RESULT_FACTS[k][1]} (damaged); the report leaves "
            "it out" for k in wrong]


COMMANDS = (add_render_command, add_report_command)
"""`f(subparsers)` functions that add the viz commands to the CLI."""
