"""What the notebooks in `notebooks/` call, so that their cells stay short (logic lives here, not in cells).

- Set-up and live output: `setup`, `use_live`, `fresh_run_dir`, `print_progress`,
  tables (`html_table`, `operations_table`, `space_size_table`, `path_table`, `run_files`, `show_json`,
  `runs_table`, `scratch_table`), figures (`compare_figure`, `final_best_figure`, `scratch_figure`,
  `rank_figure`), the ablation variants (`ABLATIONS`), `spread_sample` and `kendall`.

Running the notebooks headless (`demo`, `batch`) is `nasviz.headless`. Only the standard library is imported at
module level: plotly, torch and scipy are imported inside the functions that use them.
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError

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
