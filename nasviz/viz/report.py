"""Static output of a run: every figure as standalone HTML, one report page, the best cells; and `show_static`
for headless notebooks (papermill), where widget state renders poorly outside Jupyter."""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from nasviz.errors import NasvizError
from nasviz.runs import rundir
from nasviz.viz.cells import GraphvizMissing, svg_markup, write_cells
from nasviz.viz.common import Row
from nasviz.viz.figures import FIGURES, all_figures
from nasviz.viz.genealogy import genealogy_figure
from nasviz.viz.partial import is_partial, rows_so_far

WARMUP_FIGURES = ("training_curves", "op_frequency")
"""The figures a stopped warm-up has data for."""

PLOTLY_JS = "plotly.min.js"


def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def write_report(run_dir: str | Path) -> list[Path]:
    """Write `figures/<name>.html` for every figure, `report.html` (all figures, the best cells, the result)
    and `best_normal.svg`/`best_reduce.svg`; returns the written paths. Works offline: plotly.js is written
    once, to `figures/plotly.min.js`, and every page loads it from there. Every file is written inside the run
    directory: a `figures` link is refused, a link in place of a file is replaced, never written through."""
    run_dir = Path(run_dir)
    rows = rundir.load_history(run_dir, check=True)
    if not rows:
        raise ValueError(f"{run_dir} has no {rundir.HISTORY} rows yet; nothing to report")
    folder = rundir.real_subfolder(run_dir, rundir.FIGURES)  # never through a link out of the run directory
    written = []
    js = folder / PLOTLY_JS
    rundir.atomic_write_bytes(js, _plotly_js())
    written.append(js)
    figs = {**all_figures(rows), "genealogy": genealogy_figure(rows)}  # hover: genotype and parents, no kernel
    for name, fig in figs.items():
        path = folder / f"{name}.html"
        page = fig.to_html(include_plotlyjs=False, full_html=True)
        page = page.replace("<head>", f'<head><script src="{PLOTLY_JS}"></script>', 1)
        rundir.atomic_write_bytes(path, page.encode())
        written.append(path)
    best = rows[-1]["best"]["genotype"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without dot: .dot files, and the page says how to install Graphviz
        written += write_cells(best, run_dir / rundir.BEST_CELLS)
    report = run_dir / rundir.REPORT
    rundir.atomic_write_bytes(report, _report_page(run_dir, rows, figs).encode())
    written.append(report)
    return written


RESULT_FACTS: dict[str, tuple[tuple[type, ...], str]] = {
    "method": ((str,), "text"), "dataset": ((str,), "text"), "preset": ((str,), "text"), "seed": ((int,), "an integer"),
    "finished": ((bool,), "true/false"), "search_wall_time_s": ((int, float), "a number"),
    "best_genotype": ((str,), "genotype text"), "best_fitness": ((int, float), "a number"),
}
"""result.json's fields that the report shows, their JSON types and how a note names them."""


def typed_result(result: dict) -> dict:
    """`result` without the fields of `RESULT_FACTS` that have the wrong type (`viz.cli` notes each)."""
    def ok(key: str, value) -> bool:
        if key not in RESULT_FACTS:
            return True
        kinds = RESULT_FACTS[key][0]
        return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))

    return {k: v for k, v in result.items() if ok(k, v)}


def _report_page(run_dir: Path, rows: list[Row], figs: dict[str, go.Figure]) -> str:
    try:
        result = typed_result(rundir.load_result(run_dir) or {})
    except NasvizError:  # JSON, but not an object (the command line refuses it)
        result = {}
    best = rows[-1]["best"]
    try:
        cells = svg_markup(best["genotype"])
    except GraphvizMissing as exc:
        cells = f"<p><i>{html.escape(str(exc))}</i></p>"
    facts = {
        "method": result.get("method"), "dataset": result.get("dataset"), "preset": result.get("preset"),
        "seed": result.get("seed"), "generations": rows[-1]["generation"], "finished": result.get("finished"),
        "best fitness": best["fitness"], "evaluations": rows[-1]["evaluations"],
        "supernet steps": rows[-1]["supernet_steps"], "search wall time (s)": result.get("search_wall_time_s"),
    }
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in facts.items() if v is not None)
    divs = "\n".join(f"<section>{fig.to_html(include_plotlyjs=False, full_html=False)}</section>"
                     for fig in figs.values())
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>nasviz report: {html.escape(run_dir.name)}</title>
<script src="{rundir.FIGURES}/{PLOTLY_JS}"></script>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:24px;max-width:1200px}}
th{{text-align:left;padding-right:12px}} code{{word-break:break-all}}
.cells svg{{max-width:100%;height:auto}}</style></head>
<body><h1>nasviz report: {html.escape(run_dir.name)}</h1>
<table>{table}</table>
<h2>Best genotype</h2><p><code>{html.escape(best["genotype"])}</code></p>
<div class="cells">{cells}</div>
<h2>Figures</h2>
{divs}
</body></html>
"""


def show_static(source: str | Path | Sequence[Row], names: Sequence[str] | None = None) -> list[go.Figure]:
    """Display static figures (plain `go.Figure`s, no widget state) of a run directory or of rows, and the best
    cells; for headless runs (papermill, nbconvert). A run stopped during its warm-up shows its training so far
    (`nasviz.viz.partial`). Returns the figures."""
    from IPython.display import HTML, display

    from nasviz.viz.cells import show_cells

    rows = rows_so_far(source) if isinstance(source, (str, Path)) else list(source)
    unknown = [n for n in names or () if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; allowed: {', '.join(FIGURES)}")
    if is_partial(rows):  # stopped during the warm-up: only the supernet's training so far has data
        steps = rows[-1]["supernet_steps"]
        display(HTML(f"<i>stopped during the warm-up after {steps} supernet steps: no population yet, so only the "
                     "training figures have data</i>"))
        names = [n for n in names or FIGURES if n in WARMUP_FIGURES]
    figs = [FIGURES[name](rows) for name in (names or FIGURES)]
    for fig in figs:
        display(fig)
    if rows and not is_partial(rows):
        display(show_cells(rows[-1]["best"]["genotype"]))
    return figs
