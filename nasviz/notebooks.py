"""What the notebooks in `notebooks/` call, and the commands that run them headless.

- Helpers for the notebooks (so their cells stay short): `setup`, `use_live`, `fresh_run_dir`, `print_progress`,
  tables (`html_table`, `operations_table`, `space_size_table`, `path_table`, `run_files`, `show_json`,
  `runs_table`, `scratch_table`), figures (`compare_figure`, `final_best_figure`, `scratch_figure`,
  `rank_figure`), the ablation variants (`ABLATIONS`), `spread_sample` and `kendall`.
- `python -m nasviz demo`: runs the main notebook (03_search.ipynb) headless with papermill and exports HTML.
- `python -m nasviz batch NOTEBOOK --grid key=v1,v2 ... --out DIR`: one papermill run per grid point.

Only the standard library is imported at module level: the CLI imports this module to add its commands.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError

MAIN_NOTEBOOK = "03_search.ipynb"
KERNEL_NAME = "python3"
HEADLESS_ENV = "NASVIZ_HEADLESS"
"""Set (to 1) in the environment of notebooks run by `demo`, `batch` and the tests: `use_live` then says no."""


# =============================================================================================================
# notebook set-up
# =============================================================================================================
def setup() -> None:
    """Call once at the top of a notebook. Headless (papermill), plotly figures carry their HTML, with plotly.js
    inlined once, beside their JSON: nbconvert's HTML export and nbviewer show them, offline. In a front end
    plotly's own default stays (JupyterLab draws the JSON; no 4 MB of plotly.js saved into the notebook)."""
    import plotly.io as pio

    if headless():
        pio.renderers.default = "plotly_mimetype+notebook"


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


def holds_run(path: str | Path) -> bool:
    """True when `path` holds (part of) a search run."""
    path = Path(path)
    return any((path / name).exists() for name in ("checkpoint.pt", "history.jsonl", "result.json"))


def fresh_run_dir(out: str | Path) -> Path:
    """`out`, or if it already holds a run, a fresh sibling `out-YYYYmmdd-HHMMSS` (finished work is never
    overwritten)."""
    path = Path(out).expanduser()
    if not holds_run(path):
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}-{stamp}")
    k = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}-{stamp}-{k}")
        k += 1
    print(f"{path} already holds a run; this one goes to {candidate}")
    return candidate


def fresh_folder(out: str | Path) -> Path:
    """`out`, or if it exists and is not empty, a fresh sibling `out-YYYYmmdd-HHMMSS` (for a folder of runs)."""
    path = Path(out).expanduser()
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, k = path.with_name(f"{path.name}-{stamp}"), 2
    while candidate.exists():
        candidate, k = path.with_name(f"{path.name}-{stamp}-{k}"), k + 1
    print(f"{path} is not empty; the runs go to {candidate}")
    return candidate


def print_progress(search) -> Callable[[], None]:
    """Print one line per warm-up checkpoint and per generation (what a headless run shows); returns the
    function that stops it."""
    config = search.config
    start = time.perf_counter()

    def listener(event: dict) -> None:
        kind = event["type"]
        elapsed = time.perf_counter() - start
        if kind == "checkpoint" and event["generation"] < 0:
            print(f"warm-up: {event['warmup_done']}/{config.warmup_steps} supernet steps ({elapsed:.0f} s)", flush=True)
        elif kind == "generation":
            what = "initial population" if event["generation"] == 0 else f"generation {event['generation']}"
            print(f"{what} ({event['generation']}/{config.generations}): best {event['best']['fitness']:.4f}, "
                  f"mean {event['mean_fitness']:.4f}, {event['evaluations']} evaluations, "
                  f"{event['supernet_steps']} supernet steps ({elapsed:.0f} s)", flush=True)

    return search.subscribe(listener)


def config_table(config):
    """Every setting of a SearchConfig; settings that differ from the preset are marked."""
    from nasviz.config import PRESETS, SearchConfig

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
    from nasviz.network import count_params

    c = search.config
    fitness_images = sum(len(y) for _x, y in search.fitness_batches)
    return (f"dataset {search.data.name}: {len(search.data.train_labels):,} training images, of which "
            f"{len(search.stream.images):,} train the supernet's weights and {fitness_images:,} measure fitness "
            f"(the test set is not used by the search)\n"
            f"supernet: {c.layers} cells, {c.channels} channels, {count_params(search.supernet):,} parameters "
            f"shared by every path; device {search.device}\n"
            f"budget: {c.warmup_steps} warm-up steps, population {c.population}, {c.generations} generations "
            f"of {c.finetune_steps if c.uses_finetune else 0} fine-tuning steps")


def generation_summary(row: dict | None):
    """One generation's individuals: role, fitness before and after fine-tuning, ranks, and who was selected."""
    if row is None:
        return _display_html("<i>nothing to do: the search is finished</i>")
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


# =============================================================================================================
# tables
# =============================================================================================================
def _display_html(text: str):
    from IPython.display import HTML

    return HTML(text)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:,}"
    elif value is None:
        text = ""
    else:
        text = str(value)
    return html.escape(text)


def html_table(rows: Sequence[dict], columns: Sequence[str] | None = None, caption: str | None = None):
    """A small HTML table (an IPython `HTML` object) of dicts; numbers are formatted, text escaped."""
    columns = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    style = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
    head = "".join(f"<th style='{style}'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td style='{style};white-space:nowrap'>{_cell(r.get(c))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    cap = f"<caption style='text-align:left;font-weight:bold'>{html.escape(caption)}</caption>" if caption else ""
    return _display_html(f"<table style='border-collapse:collapse;font-size:13px'>{cap}<tr>{head}</tr>{body}</table>")


_OP_INFO = {
    "none": ("zero", "no connection (DARTS's 'none'); never sampled in a path"),
    "max_pool_3x3": ("pooling", "3x3 max pooling"),
    "avg_pool_3x3": ("pooling", "3x3 average pooling"),
    "skip_connect": ("identity", "identity (a factorized 1x1 reduce when the cell halves the resolution)"),
    "sep_conv_3x3": ("convolution", "ReLU, depthwise 3x3 + pointwise 1x1, BN; twice"),
    "sep_conv_5x5": ("convolution", "ReLU, depthwise 5x5 + pointwise 1x1, BN; twice"),
    "dil_conv_3x3": ("convolution", "ReLU, depthwise 3x3 with dilation 2 + pointwise 1x1, BN"),
    "dil_conv_5x5": ("convolution", "ReLU, depthwise 5x5 with dilation 2 + pointwise 1x1, BN"),
}


def operations_table(channels: int = 16):
    """The eight DARTS operations: family, what each does, and its parameters on one edge of `channels`."""
    from nasviz.network import count_params
    from nasviz.ops import make_op
    from nasviz.space import OPS

    rows = []
    for op in OPS:
        family, what = _OP_INFO[op]
        params = 0 if op == "none" else count_params(make_op(op, channels, 1, affine=True))
        rows.append({"operation": op, "family": family, "what it computes": what,
                     f"parameters (C={channels}, stride 1)": params, "in a path": "no" if op == "none" else "yes"})
    return html_table(rows, caption="The DARTS operations, in DARTS order")


def space_size_table():
    """How many choices each node of a cell has, and how many cells and genotypes that makes."""
    from nasviz.space import CANDIDATE_OPS, NODES, cell_space_size, space_size

    k = len(CANDIDATE_OPS)
    rows = []
    for j in range(NODES):
        pairs = math.comb(j + 2, 2)
        rows.append({"node": j, "inputs to choose from": j + 2, "pairs of distinct inputs": pairs,
                     "operations per edge": k, "choices for this node": pairs * k * k})
    rows.append({"node": "one cell", "choices for this node": cell_space_size()})
    rows.append({"node": "genotype (normal x reduction)", "choices for this node": space_size()})
    return html_table(rows, caption=f"Size of the DARTS cell space ({k} operations per edge, 'none' excluded)")


def path_table(genotypes: dict[str, Any], input_shape: Sequence[int], num_classes: int, channels: int,
               layers: int):
    """Parameters and FLOPs of each genotype's path (its standalone search-width network) next to the whole
    supernet's parameters."""
    import torch

    from nasviz.network import SearchNetwork, count_flops, count_params
    from nasviz.supernet import Supernet
    from nasviz.viz.common import as_genotype

    with torch.device("meta"):
        total = count_params(Supernet(input_shape[0], num_classes, channels, layers))
    rows = [{"network": "whole supernet (every operation on every edge)", "parameters": total}]
    for name, genotype in genotypes.items():
        net = SearchNetwork(as_genotype(genotype), input_shape[0], num_classes, channels, layers)
        params = count_params(net)
        rows.append({"network": f"path: {name}", "parameters": params,
                     "share of the supernet": f"{100 * params / total:.1f} %",
                     "MFLOPs per image": round(count_flops(net, tuple(input_shape)) / 1e6, 2)})
    return html_table(rows, caption=f"{layers} cells, {channels} initial channels, input {tuple(input_shape)}")


def genotype_table(genotypes: dict[str, Any]):
    """Genotypes side by side, node by node ('sep3←0 sep3←1 | …'; inputs 0 and 1 are c_{k-2} and c_{k-1})."""
    from nasviz.viz.common import cell_summary

    rows = [{"genotype": name, "normal cell": cell_summary(g, "normal"), "reduction cell": cell_summary(g, "reduce")}
            for name, g in genotypes.items()]
    return html_table(rows, caption="node 0 | node 1 | node 2 | node 3, each: operation←input")


def shared_edges(a, b) -> int:
    """How many of the 16 (cell, node, input, operation) choices two genotypes share: the supernet modules both
    paths would train."""
    from nasviz.space import CELL_TYPES
    from nasviz.viz.common import as_genotype

    a, b = as_genotype(a), as_genotype(b)

    def choices(g):
        return {(t, k // 2, inp, op) for t in CELL_TYPES for k, (op, inp) in enumerate(g.cell(t))}

    return len(choices(a) & choices(b))


def weight_sharing_check(supernet, genotype, x) -> float:
    """Copy `genotype`'s path out of the supernet into a standalone network and return the largest difference
    of their outputs on `x` (evaluation mode): 0 means the path *is* that network, with the same weights."""
    import torch

    from nasviz.network import SearchNetwork, copy_path_weights
    from nasviz.viz.common import as_genotype

    genotype = as_genotype(genotype)
    net = SearchNetwork(genotype, x.shape[1], supernet.classifier.out_features, supernet.channels, supernet.layers)
    copy_path_weights(supernet, net)
    was = supernet.training
    supernet.eval()
    net.eval()
    with torch.no_grad():
        diff = (supernet(x, genotype) - net(x)).abs().max().item()
    supernet.train(was)
    return diff


def path_statistics(paths: Sequence[Any]):
    """How often each operation and each input was trained in `paths` (fractions of all edges), summed over
    cells and nodes."""
    from collections import Counter

    from nasviz.space import CANDIDATE_OPS, CELL_TYPES
    from nasviz.viz.common import as_genotype

    ops, inputs = Counter(), Counter()
    for path in paths:
        g = as_genotype(path)
        for t in CELL_TYPES:
            for op, inp in g.cell(t):
                ops[op] += 1
                inputs[inp] += 1
    edges = max(sum(ops.values()), 1)
    rows = [{"operation": op, "edges trained": ops[op], "share": ops[op] / edges} for op in CANDIDATE_OPS]
    distinct = len({as_genotype(p).key() for p in paths})
    return html_table(rows, caption=f"{len(paths)} paths trained ({distinct} distinct); "
                                    f"uniform sampling gives each operation 1/{len(CANDIDATE_OPS)} ≈ "
                                    f"{1 / len(CANDIDATE_OPS):.3f}")


def inherited_fitness(search, genotypes: dict[str, Any]):
    """Fitness of some genotypes with the supernet's current (inherited) weights, as the search measures it:
    BatchNorm statistics recalibrated for the path, then accuracy on the fitness images."""
    from nasviz.train import fitness
    from nasviz.viz.common import as_genotype

    rows = [{"genotype": name,
             "fitness (inherited weights)": fitness(search.supernet, as_genotype(g), search.calibration,
                                                    search.fitness_batches),
             "params": search.params_of(as_genotype(g))} for name, g in genotypes.items()]
    return html_table(rows, caption=f"after {search.steps} supernet steps")


_RUN_FILES = {
    "config.json": "every setting of the run",
    "history.jsonl": "one line per generation: individuals, fitness before/after fine-tuning, trained paths",
    "events.jsonl": "every event, as the dashboard saw it",
    "result.json": "best genotype and fitness, top-k, switches, seed, wall time, supernet steps, versions",
    "checkpoint.pt": "supernet, optimizer, GA state and RNG states (resume with Search.resume)",
    "best_normal.svg": "the best normal cell (graphviz)",
    "best_reduce.svg": "the best reduction cell (graphviz)",
}


def run_files(run_dir: str | Path):
    """The files of a run directory with their sizes and what each holds."""
    run_dir = Path(run_dir)
    rows = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = str(path.relative_to(run_dir))
        what = _RUN_FILES.get(name, "the static HTML report (figures, best cells, tables)"
                              if name.endswith(".html") else "")
        rows.append({"file": name, "size": _size(path.stat().st_size), "what it holds": what})
    return html_table(rows, caption=str(run_dir))


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def show_json(path: str | Path):
    """A JSON file, pretty-printed (HTML, so that it survives the HTML export)."""
    text = json.dumps(json.loads(Path(path).read_text()), indent=2)
    return _display_html(f"<b>{html.escape(str(path))}</b><pre style='font-size:12px'>{html.escape(text)}</pre>")


# =============================================================================================================
# runs: reading, tables, comparison figures
# =============================================================================================================
def find_runs(runs_dir: str | Path) -> list[dict]:
    """Every run directory under `runs_dir` (itself included): folders holding result.json or history.jsonl.

    Each run is a dict: name (path relative to `runs_dir`), path, config, result, rows (history), parameters
    (the notebook parameters a batch recorded in parameters.json beside or above it, if any). A missing
    `runs_dir` gives no runs (and says so)."""
    from nasviz.search import load_history

    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        print(f"runs_dir {str(root)!r} is not a folder (yet); no runs to read")
        return []
    folders = sorted({p.parent for name in ("result.json", "history.jsonl") for p in root.rglob(name)})
    runs = []
    for folder in folders:
        rows = load_history(folder)
        result = _read_json(folder / "result.json") or {}
        config = _read_json(folder / "config.json") or {}
        parameters = _read_json(folder / "parameters.json") or _read_json(folder.parent / "parameters.json") or {}
        name = str(folder.relative_to(root)) if folder != root else root.name
        if name.endswith("/run") and parameters:  # batch layout DIR/<point>/run: name it after the point
            name = name[: -len("/run")]
        runs.append({"name": name, "path": folder, "config": config, "result": result, "rows": rows,
                     "parameters": parameters})
    return runs


def select_runs(runs: Sequence[dict], **criteria: Any) -> list[dict]:
    """The runs whose settings equal every criterion that is not None, e.g. `select_runs(runs, preset="smoke")`."""
    wanted = {k: v for k, v in criteria.items() if v is not None}

    def setting(run: dict, key: str) -> Any:
        return run["config"].get(key, run["result"].get(key, run["parameters"].get(key)))

    return [run for run in runs if all(setting(run, k) == v for k, v in wanted.items())]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def runs_table(runs: Sequence[dict]):
    """One line per run: method, switches, dataset, preset, seed, progress, best fitness, cost."""
    rows = []
    for run in runs:
        result, config = run["result"], run["config"]
        last = run["rows"][-1] if run["rows"] else None
        switches = result.get("switches", {})
        rows.append({
            "run": run["name"],
            "method": result.get("method", config.get("method")),
            "fine-tune": switches.get("finetune"),
            "sampling": switches.get("path_sampling", config.get("path_sampling")),
            "dataset": result.get("dataset", config.get("dataset")),
            "preset": result.get("preset", config.get("preset")),
            "seed": result.get("seed", config.get("seed")),
            "generations": f"{last['generation'] if last else '-'}/{config.get('generations', '?')}",
            "best fitness": last["best"]["fitness"] if last else None,
            "best params": result.get("best_params"),
            "evaluations": last["evaluations"] if last else None,
            "supernet steps": last["supernet_steps"] if last else None,
            "search time (s)": result.get("search_wall_time_s"),
            "finished": result.get("finished"),
        })
    return html_table(rows, caption=f"{len(rows)} run(s)")


def compare_figure(runs: Sequence[dict], title: str = "Runs side by side"):
    """Best and mean population fitness per generation, one colour per run (left: best, right: mean)."""
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("best fitness", "mean fitness of the population"))
    colors = px.colors.qualitative.Plotly
    for k, run in enumerate(runs):
        gens = [r["generation"] for r in run["rows"]]
        color = colors[k % len(colors)]
        fig.add_trace(go.Scatter(x=gens, y=[r["best"]["fitness"] for r in run["rows"]], mode="lines+markers",
                                 name=run["name"], legendgroup=run["name"], line={"color": color}), row=1, col=1)
        fig.add_trace(go.Scatter(x=gens, y=[r["mean_fitness"] for r in run["rows"]], mode="lines+markers",
                                 name=run["name"], legendgroup=run["name"], showlegend=False,
                                 line={"color": color, "dash": "dash"}), row=1, col=2)
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", height=420,
                      legend={"orientation": "h", "y": -0.2}, margin={"l": 60, "r": 20, "t": 70, "b": 40})
    fig.update_xaxes(title_text="generation", tickmode="linear", dtick=1)
    fig.update_yaxes(title_text="fitness (validation accuracy, inherited weights)", row=1, col=1)
    return fig


def final_best_figure(runs: Sequence[dict], by: str = "method"):
    """Final best fitness of each run, grouped by a setting (`by`: a config key, e.g. method or seed)."""
    import plotly.graph_objects as go

    groups: dict[str, list[tuple[str, float]]] = {}
    for run in runs:
        if not run["rows"]:
            continue
        key = str(run["config"].get(by, run["parameters"].get(by, "?")))
        groups.setdefault(key, []).append((run["name"], run["rows"][-1]["best"]["fitness"]))
    fig = go.Figure()
    for key, points in groups.items():
        fig.add_trace(go.Box(y=[f for _, f in points], name=key, boxpoints="all", pointpos=0, jitter=0.3,
                             text=[n for n, _ in points], hovertemplate="%{text}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title={"text": f"Final best fitness by {by}", "x": 0.01}, template="plotly_white", height=380,
                      showlegend=False, yaxis_title="best fitness", xaxis_title=by)
    return fig


# =============================================================================================================
# from-scratch training, ablations, ranking correlation
# =============================================================================================================
def scratch_table(results: dict[str, dict]):
    """One line per trained genotype: test accuracy, parameters, FLOPs, time."""
    rows = [{"architecture": name, "test accuracy": r["test_accuracy"], "test images": r["test_images"],
             "parameters": r["params"], "MFLOPs": round(r["flops"] / 1e6, 2), "epochs": r["config"]["epochs"],
             "train images": r["train_images"], "time (s)": round(r["wall_time_s"], 1)}
            for name, r in results.items()]
    return html_table(rows, caption="Trained from scratch with the same budget")


def scratch_figure(results: dict[str, dict], title: str = "Test accuracy after training from scratch"):
    """A bar per trained genotype: test accuracy, with parameters in the label."""
    import plotly.graph_objects as go

    names = list(results)
    acc = [results[n]["test_accuracy"] for n in names]
    fig = go.Figure(go.Bar(x=names, y=acc, text=[f"{a:.3f}<br>{results[n]['params']:,} params"
                                                 for n, a in zip(names, acc)],
                           textposition="outside", marker={"color": "#636efa"}))
    low = min(acc) if acc else 0.0
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", height=400,
                      yaxis={"title": "test accuracy", "range": [max(0.0, low - 0.15), 1.0]})
    return fig


ABLATIONS: dict[str, dict[str, Any]] = {
    "sft-ga": {"method": "sft-ga"},
    "ga": {"method": "ga"},
    "region": {"method": "sft-ga", "path_sampling": "region"},
    "uniform": {"method": "sft-ga", "path_sampling": "uniform"},
    "no-reevaluation": {"method": "sft-ga", "reevaluate_parents": False},
    "random": {"method": "random"},
}
"""Search variants for the ablation notebook, each a set of SearchConfig overrides:
sft-ga (the method: fine-tuning on the population, fair re-evaluation), ga (no fine-tuning: SPOS-style
evolution), region / uniform (other fine-tuning path-sampling strategies), no-reevaluation (parents keep
fitness values computed under older weights), random (random search with weight sharing)."""


_ABLATION_NOTES = {
    "sft-ga": "the method: fine-tune on the population P ∪ Q, fair re-evaluation",
    "ga": "GA without fine-tuning (SPOS-style evolution on the warmed-up supernet)",
    "region": "SFT-GA, fine-tuning paths drawn gene by gene from the region's frequencies",
    "uniform": "SFT-GA, fine-tuning paths drawn uniformly (no focusing)",
    "no-reevaluation": "SFT-GA, but parents keep fitness values from older weights (unfair comparison)",
    "random": "random search with weight sharing, same number of evaluations",
}


def ablation_table(variants: Sequence[str]):
    """What each variant changes."""
    rows = [{"variant": v, "settings": ", ".join(f"{k}={val!r}" for k, val in ABLATIONS.get(v, {}).items()),
             "what it tests": _ABLATION_NOTES.get(v, "unknown variant")} for v in variants]
    return html_table(rows, caption="Search variants")


def best_table(runs: Sequence[dict]):
    """The best genotype of each run, node by node."""
    from nasviz.viz.common import cell_summary

    rows = []
    for run in runs:
        if not run["rows"]:
            continue
        best = run["rows"][-1]["best"]
        rows.append({"run": run["name"], "best fitness": best["fitness"],
                     "normal cell": cell_summary(best["genotype"], "normal"),
                     "reduction cell": cell_summary(best["genotype"], "reduce")})
    return html_table(rows, caption="Best genotype of each run")


def ablation_config(base, variant: str):
    """`base` (a SearchConfig) with `variant`'s switches; an unknown variant is a one-line error."""
    from nasviz.space import suggest

    if variant not in ABLATIONS:
        raise ConfigError(f"unknown variant {variant!r}{suggest(variant, list(ABLATIONS))}; "
                          f"allowed: {', '.join(ABLATIONS)}")
    values = dict(ABLATIONS[variant])
    if values.get("method") in ("ga", "random"):
        values.setdefault("finetune", None)
    return base.replace(**values)


def spread_sample(individuals: Sequence[dict], k: int) -> list[dict]:
    """Up to `k` distinct individuals spread evenly over the fitness range (best, worst and in between)."""
    unique = list({i["genotype"]: i for i in sorted(individuals, key=lambda i: -i["fitness"])}.values())
    if len(unique) <= k:
        return unique
    if k == 1:
        return unique[:1]
    picks = sorted({round(j * (len(unique) - 1) / (k - 1)) for j in range(k)})
    return [unique[p] for p in picks]


def kendall(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau-b between two rankings (scipy.stats.kendalltau) and its p-value; nan when undefined."""
    from scipy.stats import kendalltau

    if len(x) < 2:
        return float("nan"), float("nan")
    res = kendalltau(list(x), list(y))
    return float(res.statistic), float(res.pvalue)


def rank_figure(fitness: Sequence[float], accuracy: Sequence[float], labels: Sequence[str],
                title: str = "Supernet fitness vs accuracy from scratch"):
    """Scatter of supernet fitness (inherited weights) against from-scratch test accuracy, with Kendall's tau."""
    import plotly.graph_objects as go

    tau, p = kendall(fitness, accuracy)
    fig = go.Figure(go.Scatter(x=list(fitness), y=list(accuracy), mode="markers+text", text=list(labels),
                               textposition="top center", marker={"size": 10, "color": "#ef553b"},
                               hovertemplate="%{text}<br>fitness %{x:.4f}<br>accuracy %{y:.4f}<extra></extra>"))
    fig.update_layout(title={"text": f"{title} (Kendall τ = {tau:.2f}, p = {p:.2f})", "x": 0.01},
                      template="plotly_white", height=420, xaxis_title="supernet fitness (inherited weights)",
                      yaxis_title="test accuracy (trained from scratch)")
    return fig


# =============================================================================================================
# papermill: parameters and execution
# =============================================================================================================
def notebook_dir() -> Path:
    """The repository's notebooks/ folder (nasviz is installed editable from the repository)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The names and default values (as source text) of the notebook's `parameters` cell (papermill's reading)."""
    import papermill as pm

    try:
        declared = pm.inspect_notebook(str(path))
    except Exception as exc:  # not JSON, not a notebook
        raise ConfigError(f"cannot read notebook {str(path)!r}: {_one_line(exc)}") from None
    return {name: info.get("default") for name, info in declared.items()}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _check_notebook(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        hint = f"; the notebooks are in {notebook_dir()}" if notebook_dir().is_dir() else ""
        raise ConfigError(f"notebook {str(path)!r} does not exist{hint}")
    if path.suffix != ".ipynb":
        raise ConfigError(f"notebook {str(path)!r} is not a .ipynb file")
    return path


def execute(notebook: Path, output: Path, parameters: dict[str, Any], *, cwd: str | Path | None = None,
            log_output: bool = False) -> dict:
    """Run `notebook` with papermill into `output` (the venv's `python3` kernel, headless); never raises for an
    error inside the notebook. Returns {status: 'ok'|'failed', error, seconds}."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    saved = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"  # the kernel inherits it: use_live() says no
    start = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=KERNEL_NAME,
                            progress_bar=False, log_output=log_output, cwd=None if cwd is None else str(cwd))
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {_one_line(exc.evalue)}" if exc.evalue else exc.ename
    except Exception as exc:  # the kernel died, the notebook could not be written, ...
        error = f"{type(exc).__name__}: {_one_line(exc)}"
    finally:
        if saved is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = saved
    return {"status": "ok" if error is None else "failed", "error": error,
            "seconds": round(time.perf_counter() - start, 1)}


def export_html(notebook: Path, target: Path) -> Path:
    """Export an executed notebook to a standalone HTML page (nbconvert's HTMLExporter)."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _resources = HTMLExporter().from_notebook_node(nbformat.read(str(notebook), as_version=4))
    target.write_text(body, encoding="utf-8")
    return target


# =============================================================================================================
# python -m nasviz demo
# =============================================================================================================
DEMO_OUTPUTS = ("run", MAIN_NOTEBOOK, MAIN_NOTEBOOK.replace(".ipynb", ".html"))


def move_aside(out: Path) -> Path | None:
    """Move a previous demo's outputs in `out` (run/, the notebook, its HTML) into `out/previous-<time>/`."""
    present = [out / name for name in DEMO_OUTPUTS if (out / name).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in present)))
    target = out / f"previous-{stamp}"
    k = 2
    while target.exists():
        target = out / f"previous-{stamp}-{k}"
        k += 1
    target.mkdir(parents=True)
    for path in present:
        shutil.move(str(path), str(target / path.name))
    return target


def cmd_demo(args: argparse.Namespace) -> int:
    from nasviz.config import PRESETS, SearchConfig
    from nasviz.data import check_dataset_name
    from nasviz.space import suggest

    notebook = _check_notebook(args.notebook or notebook_dir() / MAIN_NOTEBOOK)
    if args.preset not in PRESETS:
        raise ConfigError(f"unknown preset {args.preset!r}{suggest(args.preset, list(PRESETS))}; "
                          f"allowed: {', '.join(PRESETS)}")
    dataset = check_dataset_name(args.dataset)
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")
    overrides = _settings(args.set)
    for key in ("dataset", "seed", "preset", "method"):
        if key in overrides:
            raise ConfigError(f"--set {key}=... is not allowed here; use --{key}" if key != "method" else
                              "--set method=... is not allowed: the demo runs the method (sft-ga); use "
                              "python -m nasviz batch for the baselines")
    SearchConfig.from_preset(args.preset, dataset=dataset, seed=args.seed, **overrides)  # one-line error if wrong
    out.mkdir(parents=True, exist_ok=True)
    previous = move_aside(out)
    if previous is not None:
        print(f"moved the previous demo's files to {previous}")
    run_dir = (out / "run").resolve()
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
    result = _read_json(run_dir / "result.json") or {}
    print(f"\ndemo finished in {status['seconds']:.0f} s: best fitness {result.get('best_fitness')}\n"
          f"  notebook  {executed}\n  HTML      {page}\n  run files {run_dir}")
    return 0


def _settings(pairs: Sequence[str]) -> dict[str, Any]:
    """`--set key=value` pairs into a dict (values typed as JSON where they parse, else text)."""
    from nasviz.cli import parse_settings

    return {key: parse_value(value) for key, value in parse_settings(pairs).items()}


def _log_notebook_output() -> None:
    """Show papermill's log (each cell's start and its output) on stdout, without timestamps."""
    import logging

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
    p.add_argument("--preset", default="quick", help="smoke, quick (default) or paper")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); earlier demo files in it "
                                                       "are moved to a previous-<time>/ subfolder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one search setting (the notebook's `overrides`), e.g. --set population=6")
    p.add_argument("--notebook", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_demo)


# =============================================================================================================
# python -m nasviz batch
# =============================================================================================================
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
        if len(set(texts)) != len(texts):
            raise ConfigError(f"--grid {spec!r} repeats a value")
        grid[key] = [(t, parse_value(t)) for t in texts]
    return grid


def point_name(texts: dict[str, str]) -> str:
    """Folder name of a grid point: key=value,key=value (characters unsafe in file names become '_')."""
    return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+=@-]', '_', v)}" for k, v in texts.items())


def _run_point(notebook: str, folder: str, parameters: dict, threads: int | None) -> dict:
    """One grid point (runs in a worker process): papermill into `folder`."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(threads))
    return execute(Path(notebook), Path(folder) / Path(notebook).name, parameters)


def cmd_batch(args: argparse.Namespace) -> int:
    import concurrent.futures as cf
    import multiprocessing

    from nasviz.space import suggest

    notebook = _check_notebook(args.notebook)
    grid = parse_grid(args.grid)
    if not grid:
        raise ConfigError("batch needs at least one --grid KEY=V1,V2,...")
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs} is out of range; allowed: an integer >= 1")
    fixed: dict[str, Any] = {}
    for key, value in args.parameter:
        if not key.isidentifier():
            raise ConfigError(f"-p {key!r}: a parameter name is a Python identifier")
        if key in grid:
            raise ConfigError(f"parameter {key!r} is given both in --grid and -p")
        fixed[key] = parse_value(value)
    declared = notebook_parameters(notebook)
    if not declared:
        raise ConfigError(f"notebook {str(notebook)!r} has no cell tagged 'parameters'")
    for key in [*grid, *fixed]:
        if key not in declared:
            raise ConfigError(f"{notebook.name} has no parameter {key!r}{suggest(key, list(declared))}; "
                              f"allowed: {', '.join(declared)}")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} exists and is not a folder")

    points = []
    for combo in itertools.product(*grid.values()):
        texts = {k: t for k, (t, _v) in zip(grid, combo)}
        folder = out / point_name(texts)
        parameters = {**fixed, **{k: v for k, (_t, v) in zip(grid, combo)}}
        if "out" in declared and "out" not in parameters:
            parameters["out"] = str((folder / "run").resolve())
        if "live" in declared and "live" not in parameters:
            parameters["live"] = False
        points.append({"name": folder.name, "folder": folder, "parameters": parameters})
    taken = [p["name"] for p in points if p["folder"].exists() and any(p["folder"].iterdir())]
    if taken:
        raise ConfigError(f"{out} already holds results for {taken[0]!r}; choose another --out (results are never "
                          "overwritten)")
    if (out / "batch.json").exists():
        raise ConfigError(f"{out} already holds a batch (batch.json); choose another --out")
    for point in points:
        point["folder"].mkdir(parents=True, exist_ok=True)
        (point["folder"] / "parameters.json").write_text(json.dumps(point["parameters"], indent=2) + "\n")

    jobs = min(args.jobs, len(points))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    print(f"batch: {len(points)} run(s) of {notebook.name}, {jobs} at a time, into {out}", flush=True)
    start = time.perf_counter()
    outcomes: dict[str, dict] = {}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_run_point, str(notebook.resolve()), str(p["folder"]), p["parameters"], threads):
                   p["name"] for p in points}
        try:
            for done, future in enumerate(cf.as_completed(futures), start=1):
                name = futures[future]
                try:
                    outcomes[name] = future.result()
                except Exception as exc:  # the worker process died
                    outcomes[name] = {"status": "failed", "error": f"{type(exc).__name__}: {_one_line(exc)}",
                                      "seconds": None}
                o = outcomes[name]
                tail = "" if o["status"] == "ok" else f": {o['error']}"
                print(f"[{done}/{len(points)}] {name}: {o['status']} ({o['seconds']} s){tail}", flush=True)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    records = []
    for p in points:
        o = outcomes.get(p["name"], {"status": "not run", "error": None, "seconds": None})
        records.append({"name": p["name"], "folder": str(p["folder"]), "parameters": p["parameters"],
                        "notebook": str(p["folder"] / notebook.name), **o})
    failed = [r for r in records if r["status"] != "ok"]
    summary = {"notebook": str(notebook), "grid": {k: [v for _t, v in vs] for k, vs in grid.items()},
               "fixed": fixed, "jobs": jobs, "points": records, "failed": len(failed),
               "seconds": round(time.perf_counter() - start, 1)}
    (out / "batch.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(summary_table(records))
    print(f"{len(records) - len(failed)} ok, {len(failed)} failed; summary in {out / 'batch.json'}")
    return 1 if failed else 0


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
    p.add_argument("--jobs", type=int, default=1, help="notebooks run at the same time (default 1)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a parameter set for every point")
    p.set_defaults(func=cmd_batch)


COMMANDS = (add_demo_command, add_batch_command)
"""`f(subparsers)` functions that add this module's subcommands to the CLI."""
