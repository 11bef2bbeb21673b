"""Notebook set-up: plotly and tqdm in Jupyter, live or static output, run folders, progress lines."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from nasviz.notebooks.cpu_share import advise_threads
from nasviz.notebooks.tables import display_html, html_table
from nasviz.runs import rundir
from nasviz.runs.events import Checkpoint, Event, Generation

HEADLESS_ENV = "NASVIZ_HEADLESS"
"""Set (to 1) in the environment of notebooks run by `demo`, `batch` and the tests: `use_live` then says no."""


def setup() -> None:
    """Call once at the top of a notebook. Says so when other programs keep cores busy (`cpu_share`). Headless
    (papermill), plotly figures carry their HTML, with plotly.js inlined once, beside their JSON: nbconvert's HTML
    export and nbviewer show them, offline. In a front end plotly's own default stays (JupyterLab draws the JSON;
    no 4 MB of plotly.js saved into the notebook)."""
    import plotly.io as pio

    from nasviz.viz.cell_parents import keep_cell_parents

    keep_cell_parents()  # widgets' messages between queued cells must not leave a cell at [*] (ipykernel 7.4)
    if headless():
        pio.renderers.default = "plotly_mimetype+notebook"
    if (advice := advise_threads()) is not None:
        print(advice)


def headless() -> bool:
    """True when no person is looking: `NASVIZ_HEADLESS` is set, or the kernel was started by papermill or
    `jupyter nbconvert --execute`."""
    if os.environ.get(HEADLESS_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return True
    try:
        cmdline = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(runner in cmdline for runner in ("papermill", "nbconvert", "nbclient"))


def use_live(live: bool) -> bool:
    """Whether to show the live dashboard: only if asked for, in a front end, and ipywidgets is importable."""
    if not live:
        return False
    if headless():
        print("live=True, but this notebook runs headless (papermill, nbconvert): showing static figures instead")
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        print("live=True, but ipywidgets is not installed: showing static figures instead")
        return False
    return True


WIDGET_GONE = ("(the live view ran here; it needs its running kernel — the static figures further down show the "
               "same run)")
"""What a reopened notebook shows where a live widget was (instead of JupyterLab's "model not found")."""


CLICKABLE_GONE = "(a figure to click ran here; it needs its running kernel: run the cell again)"
"""What a reopened notebook shows where a `clickable` figure was."""


def clickable(fig, rows: list[dict]):
    """`fig`, whose points stand for individuals of `rows` (a run's history), with click-to-inspect in a front end
    (`nasviz.viz.ExplorableFigure`: a click shows the individual's cells, fitness story and parents); `fig` itself
    where the notebook runs headless (papermill, nbconvert), so that the figure stays in the file and its HTML."""
    if headless():
        return fig
    from nasviz.viz.explorer import ExplorableFigure

    widget_fallback(CLICKABLE_GONE)
    return ExplorableFigure(fig, rows)


def widget_fallback(text: str = WIDGET_GONE):
    """Display, under a live widget, a style that replaces JupyterLab's "Error displaying widget: model not found"
    (what a saved notebook reopened without its kernel shows where the widget was) with `text`. JupyterLab
    marks only a widget output that failed to render with the class `jupyter-widgets` and gives it no child
    elements, so a live widget is never matched. Styles apply in trusted notebooks (the ones you saved yourself);
    in others the original line stays, and the notebook's text explains it."""
    from IPython.display import HTML, display

    selector = ".jp-OutputArea-output.jupyter-widgets:not(:has(*))"
    text = text.replace('"', "'")
    display(HTML(f'<style>{selector}{{font-size:0}}{selector}::after{{content:"{text}";font-size:13px;'
                 "font-style:italic;color:#555}</style>"))


def holds_run(path: str | Path) -> bool:
    """True when `path` holds (part of) a search run."""
    return rundir.is_run_dir(Path(path).expanduser())


def fresh_run_dir(out: str | Path) -> Path:
    """`out`, or if it holds a run (finished work is never overwritten), holds other files or another process
    writes there, a fresh sibling `out-YYYYmmdd-HHMMSS`. The folder is created and locked for this process at
    once, so notebooks started together (a batch with one shared `out`) get one folder each."""
    return _fresh(out, folder_of_runs=False)


def fresh_folder(out: str | Path) -> Path:
    """`out`, or if it is not empty (or another process writes there), a fresh sibling `out-YYYYmmdd-HHMMSS`, for
    a folder of runs; created and locked for this process at once (see `fresh_run_dir`)."""
    return _fresh(out, folder_of_runs=True)


def _fresh(out: str | Path, folder_of_runs: bool) -> Path:
    path = Path(rundir.check_path(out)).expanduser()
    folder, why = rundir.claim_fresh(path, folder_of_runs=folder_of_runs)
    if why is not None:
        print(f"{path} {why}; {'the runs go' if folder_of_runs else 'this run goes'} to {folder}")
    return folder


def print_progress(search) -> Callable[[], None]:
    """Print one line per warm-up checkpoint and per generation (what a headless run shows); returns the
    function that stops it."""
    config = search.config
    start = time.perf_counter()

    def listener(event: Event) -> None:
        elapsed = time.perf_counter() - start
        if isinstance(event, Checkpoint) and event.generation < 0:
            print(f"warm-up: {event.warmup_done}/{config.warmup_total} supernet steps ({elapsed:.0f} s)", flush=True)
        elif isinstance(event, Generation):
            what = "initial population" if event.generation == 0 else f"generation {event.generation}"
            print(f"{what} ({event.generation}/{config.generations}): best {event.best['fitness']:.4f}, "
                  f"mean {event.mean_fitness:.4f}, {event.evaluations} evaluations, "
                  f"{event.supernet_steps} supernet steps ({elapsed:.0f} s)", flush=True)

    return search.subscribe(listener)


def config_table(config):
    """Every setting of a SearchConfig; settings that differ from the preset are marked."""
    from nasviz.search.config import PRESETS, SearchConfig

    preset = SearchConfig.from_preset(config.preset).to_dict() if config.preset in PRESETS else {}
    rows = []
    for key, value in config.to_dict().items():
        note = ""
        if preset and key not in ("preset",) and value != preset.get(key):
            note = f"changed (preset: {preset.get(key)!r})"
        rows.append({"setting": key, "value": repr(value), "": note})
    rows.append({"setting": "→ fine-tuning", "value": repr(config.uses_finetune), "": "derived from method/finetune"})
    rows.append({"setting": "→ evaluation budget", "value": repr(config.evaluation_budget),
                 "": "population × (generations + 1) new genotypes, the same for every method"})
    return html_table(rows, caption=f"SearchConfig: {config.method} on {config.dataset}, preset {config.preset!r}")


def describe_search(search) -> str:
    """A few lines on what `Search` set up: data split, supernet size, device."""
    from nasviz.space.network import count_params

    c = search.config
    fitness_images = sum(len(y) for _x, y in search.fitness_batches)
    return (f"dataset {search.data.name}: {len(search.data.train_labels):,} training images, of which "
            f"{len(search.stream.images):,} train the supernet's weights and {fitness_images:,} measure fitness "
            f"(the test set is not used by the search)\n"
            f"supernet: {c.layers} cells, {c.channels} channels, {count_params(search.supernet):,} parameters "
            f"shared by every path; device {search.device}\n"
            f"budget: {c.warmup_total} warm-up steps, population {c.population}, {c.generations} generations "
            f"of {c.finetune_steps if c.uses_finetune else 0} fine-tuning steps")


def result_summary(result: dict) -> str:
    """One line on a search's result (`result.json`): finished or where it stopped, best fitness, budgets."""
    steps = result["supernet_steps"]
    if result["best_fitness"] is None:
        return (f"stopped during the warm-up after {steps['warmup']} supernet steps: no population yet "
                f"({result['search_wall_time_s']:.0f} s)")
    state = (f"after {result['generation']} generations" if result["finished"] else
             f"stopped after generation {result['generation']} of {result['generations']} (not finished)")
    return (f"best fitness {result['best_fitness']:.4f} {state}, {result['evaluations']} evaluations, "
            f"{steps['total']} supernet steps, {result['search_wall_time_s']:.0f} s")


def generation_summary(row: dict | None):
    """One generation's individuals: role, fitness before and after fine-tuning, ranks, and who was selected."""
    if row is None:
        return display_html("<i>no generation ran here: the search is finished, or was stopped</i>")
    from nasviz.viz.common import cell_summary, ranks

    inds = row["individuals"]
    after = ranks([i["fitness"] for i in inds])
    has_before = all(i.get("fitness_before") is not None for i in inds)
    before = ranks([i["fitness_before"] for i in inds]) if has_before else [None] * len(inds)
    table = []
    for k, ind in sorted(enumerate(inds), key=lambda e: after[e[0]]):
        table.append({"rank after": after[k], "rank before": before[k], "role": ind["role"],
                      "fitness before": ind.get("fitness_before"), "fitness after": ind["fitness"],
                      "selected": "yes" if ind["selected"] else "", "params": ind["params"],
                      "normal cell": cell_summary(ind["genotype"], "normal")})
    kept = sum(1 for i in inds if i["selected"] and i["role"] == "offspring")
    offspring = sum(1 for i in inds if i["role"] == "offspring")
    caption = (f"generation {row['generation']}: {kept} of {offspring} offspring survive; best "
               f"{row['best']['fitness']:.4f}, mean {row['mean_fitness']:.4f}" if offspring else
               f"initial population: best {row['best']['fitness']:.4f}, mean {row['mean_fitness']:.4f}")
    return html_table(table, caption=caption)
