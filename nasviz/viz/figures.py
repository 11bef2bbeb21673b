"""Plotly figures of a search, each a pure function of the history rows.

They work on a list that grows during a search (the dashboard redraws them) and on `load_history(run_dir)`
afterwards. Every figure has a fixed set of named traces, whatever the data, so a `FigureWidget` can be
updated in place (see `nasviz.viz.widgets.sync`) and tests can find traces by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from nasviz.analysis import kendall
from nasviz.search.ga import pareto_front
from nasviz.viz.common import (
    OP_SHORT,
    ROLE_COLORS,
    Row,
    distinct,
    gene_entropy,
    genotype_ids,
    node_labels,
    op_counts,
    paths_space,
    ranks,
)
from nasviz.viz.front import front_figure
from nasviz.viz.layout import FITNESS, GENERATION, Grid, axis_title, make_figure, note

ROLE_NAMES = {"initial": "initial population", "parent": "parents", "offspring": "offspring"}
ROLE_OFFSETS = {"initial": 0.0, "parent": -0.12, "offspring": 0.12}


def _generation_axis(rows: Sequence[Row]) -> dict[str, Any]:
    axis: dict[str, Any] = {"tickmode": "linear", "dtick": 1}
    if rows:
        gens = [r["generation"] for r in rows]
        axis["range"] = [min(gens) - 0.5, max(gens) + 0.5]
    return axis


def trace(fig: go.Figure, name: str):
    """The trace called `name` (KeyError if none)."""
    for t in fig.data:
        if t.name == name:
            return t
    raise KeyError(f"no trace named {name!r}; traces: {[t.name for t in fig.data]}")


# --- fitness ----------------------------------------------------------------------------------------------
def fitness_figure(rows: Sequence[Row], highlight: int | None = None) -> go.Figure:
    """Every evaluated individual per generation (filled: kept by selection; open: discarded), best and mean.

    Traces: 'initial population', 'parents', 'offspring' (points), 'best', 'mean of population' (lines).
    `highlight` shades one generation.
    """
    ids = genotype_ids(rows)
    traces = []
    for role in ("initial", "parent", "offspring"):
        xs, ys, symbols, custom = [], [], [], []
        for row in rows:
            for ind in row.get("individuals", ()):
                if ind["role"] != role:
                    continue
                xs.append(row["generation"] + ROLE_OFFSETS[role])
                ys.append(ind["fitness"])
                symbols.append("circle" if ind["selected"] else "circle-open")
                custom.append([ids[ind["genotype"]], ind["params"], "kept" if ind["selected"] else "discarded",
                               row["generation"]])
        traces.append(go.Scatter(
            x=xs, y=ys, mode="markers", name=ROLE_NAMES[role], customdata=custom,
            marker={"symbol": symbols, "size": 8, "color": ROLE_COLORS[role],
                    "line": {"width": 1.5, "color": ROLE_COLORS[role]}},
            hovertemplate="%{customdata[0]} (%{customdata[2]})<br>generation %{customdata[3]}<br>"
                          "fitness %{y:.4f}<br>%{customdata[1]:,} params<extra>" + ROLE_NAMES[role] + "</extra>",
        ))
    gens = [r["generation"] for r in rows]
    traces.append(go.Scatter(x=gens, y=[r["best"]["fitness"] for r in rows], mode="lines+markers", name="best",
                             line={"color": "#00a65a", "width": 3},
                             hovertemplate="generation %{x}: best %{y:.4f}<br>everyone is re-evaluated under this "
                                           "generation's weights,<br>so the best can fall<extra></extra>"))
    traces.append(go.Scatter(x=gens, y=[r["mean_fitness"] for r in rows], mode="lines", name="mean of population",
                             line={"color": "#444", "dash": "dash"}))
    grid = Grid()
    grid.x(title=axis_title(GENERATION), **_generation_axis(rows))
    grid.y(title=axis_title(FITNESS))
    shapes = []
    if highlight is not None:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": highlight - 0.45, "x1": highlight + 0.45,
                       "y0": 0, "y1": 1, "fillcolor": "gold", "opacity": 0.25, "line": {"width": 0}, "layer": "below"})
    fig = make_figure(traces, grid, "Fitness per generation", shapes=shapes)
    fig.update_layout(legend_title_text="filled = kept, open = discarded:", legend_xanchor="left", legend_x=0.0)
    return fig


def parents_offspring_figure(rows: Sequence[Row]) -> go.Figure:
    """Per generation >= 1: fitness of parents vs offspring (after fair re-evaluation), and who survives.

    Traces: 'parents', 'offspring' (boxes with points, top), 'surviving parents', 'surviving offspring'
    (stacked bars, bottom).
    """
    grid = Grid(2, 1, ("fitness after fine-tuning (fair re-evaluation)", "survivors of selection"),
                row_heights=[0.65, 0.35], vspace=0.12, shared_x=True)
    gens = [r for r in rows if r["generation"] >= 1]
    traces = []
    for role in ("parent", "offspring"):
        xs = [r["generation"] for r in gens for i in r["individuals"] if i["role"] == role]
        ys = [i["fitness"] for r in gens for i in r["individuals"] if i["role"] == role]
        traces.append(go.Box(x=xs, y=ys, name=ROLE_NAMES[role], boxpoints="all", jitter=0.3, pointpos=0,
                             marker={"color": ROLE_COLORS[role]}, legendgroup=role, **grid.on(1, 1)))
    for role in ("parent", "offspring"):
        counts = [sum(1 for i in r["individuals"] if i["role"] == role and i["selected"]) for r in gens]
        traces.append(go.Bar(x=[r["generation"] for r in gens], y=counts, name=f"surviving {ROLE_NAMES[role]}",
                             marker={"color": ROLE_COLORS[role], "opacity": 0.6}, legendgroup=role,
                             showlegend=False, **grid.on(2, 1)))
    grid.x(2, 1, title=axis_title(GENERATION), **_generation_axis(gens))
    grid.x(1, 1, **_generation_axis(gens))
    grid.y(1, 1, title=axis_title("fitness"))
    grid.y(2, 1, title=axis_title("individuals"))
    return make_figure(traces, grid, "Parents vs offspring", height=460, boxmode="group", barmode="stack")


def before_after_generation(rows: Sequence[Row]) -> int | None:
    """The latest generation that has 'before fine-tuning' fitness values, or None."""
    for row in reversed(rows):
        if row["generation"] >= 1 and any(i.get("fitness_before") is not None for i in row["individuals"]):
            return row["generation"]
    return None


def before_after_figure(rows: Sequence[Row], generation: int | None = None) -> go.Figure:
    """Each individual's fitness before vs after generation g's fine-tuning, and how the ranking changes.

    Left: scatter with the diagonal ('parents', 'offspring', 'y = x'). Right: slope chart of ranks before ->
    after ('kept', 'discarded'). Parents' 'before' is their fitness from the previous generation, offspring's
    is measured just before fine-tuning: both under the same weights. Default: the latest generation.
    """
    g = before_after_generation(rows) if generation is None else generation
    row = next((r for r in rows if r["generation"] == g), None) if g is not None else None
    inds = [i for i in row["individuals"] if i.get("fitness_before") is not None] if row else []
    grid = Grid(1, 2, ("fitness", "rank (1 = best)"), col_widths=[0.55, 0.45], hspace=0.12)
    ids = genotype_ids(rows)
    traces = []
    for role in ("parent", "offspring"):
        sel = [i for i in inds if i["role"] == role]
        traces.append(go.Scatter(
            x=[i["fitness_before"] for i in sel], y=[i["fitness"] for i in sel], mode="markers",
            name=ROLE_NAMES[role], customdata=[[ids[i["genotype"]], "kept" if i["selected"] else "discarded"]
                                               for i in sel],
            marker={"color": ROLE_COLORS[role], "size": 9,
                    "symbol": ["circle" if i["selected"] else "circle-open" for i in sel],
                    "line": {"width": 1.5, "color": ROLE_COLORS[role]}},
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>before %{x:.4f}<br>after %{y:.4f}<extra></extra>",
            **grid.on(1, 1),
        ))
    values = [v for i in inds for v in (i["fitness_before"], i["fitness"])]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = 0.02 * (hi - lo or 1.0)
    traces.append(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="y = x",
                             line={"color": "#999", "dash": "dot"}, hoverinfo="skip", **grid.on(1, 1)))
    before_rank = ranks([i["fitness_before"] for i in inds])
    after_rank = ranks([i["fitness"] for i in inds])
    for name, kept, color in (("kept", True, "#00a65a"), ("discarded", False, "#bbbbbb")):
        xs, ys, text = [], [], []
        for i, rb, ra in zip(inds, before_rank, after_rank):
            if bool(i["selected"]) == kept:
                xs += [0, 1, None]
                ys += [rb, ra, None]
                text += [f"{ids[i['genotype']]} {i['role']}"] * 2 + [None]
        traces.append(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name, text=text, line={"color": color},
                                 hovertemplate="%{text}: rank %{y}<extra></extra>", **grid.on(1, 2)))
    tau, _p = kendall([i["fitness_before"] for i in inds], [i["fitness"] for i in inds])
    title = "Before vs after fine-tuning"
    if g is not None:
        title += f", generation {g}"
    if not math.isnan(tau):
        title += f" (Kendall τ = {tau:.2f})"
    grid.x(1, 1, title=axis_title("fitness before fine-tuning"))
    grid.y(1, 1, title=axis_title("fitness after fine-tuning"))
    grid.x(1, 2, tickmode="array", tickvals=[0, 1], ticktext=["before", "after"], range=[-0.2, 1.2])
    grid.y(1, 2, autorange="reversed", title=axis_title("rank"))
    notes = [] if inds else [note("no fine-tuned generation yet")]
    return make_figure(traces, grid, title, annotations=notes)


# --- operations -------------------------------------------------------------------------------------------
def trained_paths(rows: Sequence[Row], phase: str, generation: int | None = None) -> list[str]:
    """Paths trained in warm-up (generation 0) or fine-tuning (generations >= 1, or only `generation`)."""
    if phase == "warmup":
        return [p for r in rows if r["generation"] == 0 for p in r.get("trained_paths", ())]
    return [p for r in rows if r["generation"] >= 1 and generation in (None, r["generation"])
            for p in r.get("trained_paths", ())]


def op_frequency_figure(rows: Sequence[Row], generation: int | None = None, *, warmup_only: bool = False
                        ) -> go.Figure:
    """Operation frequency of the trained paths per cell/node/op: warm-up vs fine-tuning, and their difference.

    Heatmap traces 'warm-up', 'fine-tuning', 'difference' (z: fraction of a node's edges using the op; rows
    sum to 1; uniform sampling gives 1/7). `generation` limits fine-tuning to that generation's paths.
    `warmup_only`: the warm-up panel alone (trace 'warm-up'), for a supernet that is not fine-tuned (02).
    """
    warm = trained_paths(rows, "warmup")
    tune = trained_paths(rows, "finetune", generation)
    space = paths_space(warm or tune)
    labels = node_labels(space.nodes)
    ops = list(space.ops)
    if warmup_only:
        return _warmup_frequency_figure(warm, space, labels, ops)
    fine_title = "fine-tuning" + (f", gen. {generation}" if generation is not None else "")
    grid = Grid(1, 3, (f"warm-up<br>{len(warm)} paths", f"{fine_title}<br>{len(tune)} paths",
                       "difference<br>fine-tuning − warm-up"), hspace=0.035, shared_y=True)
    traces, freqs = [], {}
    for col, (name, paths) in enumerate((("warm-up", warm), ("fine-tuning", tune)), start=1):
        counts = op_counts(paths, space)
        z = [[n / (2 * len(paths)) for n in row] for row in counts] if paths else [[None] * len(ops) for _ in labels]
        freqs[name] = z
        traces.append(go.Heatmap(z=z, x=ops, y=labels, name=name, customdata=counts, coloraxis="coloraxis",
                                 xgap=1, ygap=1, **grid.on(1, col),
                                 hovertemplate="%{y}<br>%{x}: %{z:.2f} (%{customdata} edges)<extra>" + name
                                 + "</extra>"))
    diff = [[None if a is None or b is None else b - a for a, b in zip(ra, rb)]
            for ra, rb in zip(freqs["warm-up"], freqs["fine-tuning"])]
    traces.append(go.Heatmap(z=diff, x=ops, y=labels, name="difference", coloraxis="coloraxis2", xgap=1, ygap=1,
                             hovertemplate="%{y}<br>%{x}: %{z:+.2f}<extra>difference</extra>", **grid.on(1, 3)))
    for col in (1, 2, 3):
        grid.x(1, col, tickangle=60, tickfont={"size": 10}, tickmode="array", tickvals=ops,
               ticktext=[OP_SHORT[op] for op in ops])
        grid.y(1, col, autorange="reversed")
    k = len(ops)
    uniform = 1 / k
    return make_figure(
        traces, grid, f"Operations on the trained paths (uniform = 1/{k} ≈ {uniform:.2f})", height=430,
        # diverging scales anchored at uniform sampling: white = 1/k (frequency) or 0 (difference), blue = more,
        # red = less; fixed ranges, so sampling noise stays pale instead of filling the whole scale
        coloraxis={"colorscale": "RdBu", "cmin": 0, "cmax": 2 * uniform, "colorbar": {
            "title": {"text": "freq."}, "x": 1.01, "y": 0.75, "len": 0.48, "thickness": 10,
            "tickvals": [0, uniform, 2 * uniform], "ticktext": ["0", f"1/{k}", f"≥ 2/{k}"]}},
        coloraxis2={"colorscale": "RdBu", "cmin": -2 * uniform, "cmax": 2 * uniform, "colorbar": {
            "title": {"text": "Δ"}, "x": 1.01, "y": 0.23, "len": 0.48, "thickness": 10,
            "tickvals": [-2 * uniform, 0, 2 * uniform], "ticktext": [f"≤ −2/{k}", "0", f"≥ +2/{k}"]}},
        margin={"l": 120, "r": 20, "t": 95, "b": 45},
    )


def _warmup_frequency_figure(paths: list[str], space, labels: list[str], ops: list[str]) -> go.Figure:
    """The warm-up panel of `op_frequency_figure` alone."""
    counts = op_counts(paths, space)
    z = [[n / (2 * len(paths)) for n in row] for row in counts] if paths else [[None] * len(ops) for _ in labels]
    k = len(ops)
    uniform = 1 / k
    trace_ = go.Heatmap(z=z, x=ops, y=labels, name="warm-up", customdata=counts, xgap=1, ygap=1,
                        colorscale="RdBu", zmin=0, zmax=2 * uniform,
                        colorbar={"title": {"text": "freq."}, "thickness": 10, "tickvals": [0, uniform, 2 * uniform],
                                  "ticktext": ["0", f"1/{k}", f"≥ 2/{k}"]},
                        hovertemplate="%{y}<br>%{x}: %{z:.2f} (%{customdata} edges)<extra>warm-up</extra>")
    grid = Grid()
    grid.x(tickangle=60, tickfont={"size": 10}, tickmode="array", tickvals=ops, ticktext=[OP_SHORT[op] for op in ops])
    grid.y(autorange="reversed")
    return make_figure([trace_], grid, f"Operations on the {len(paths)} warm-up paths (uniform = 1/{k} ≈ "
                       f"{uniform:.2f}: white)", height=430, margin={"l": 120, "r": 20, "t": 70, "b": 45})


# --- training ---------------------------------------------------------------------------------------------
def _moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for k, v in enumerate(values):
        total += v
        if k >= window:
            total -= values[k - window]
        out.append(total / min(k + 1, window))
    return out


def training_curves_figure(rows: Sequence[Row]) -> go.Figure:
    """Supernet training loss and batch accuracy vs supernet step, warm-up and fine-tuning, with moving averages.

    Traces: 'warm-up loss', 'fine-tuning loss', 'loss (moving average)', and the same for accuracy. Dotted
    lines mark where each generation's fine-tuning starts.
    """
    phases = ("warm-up", "fine-tuning")
    steps: dict[str, list] = {p: [] for p in phases}
    loss: dict[str, list] = {p: [] for p in phases}
    acc: dict[str, list] = {p: [] for p in phases}
    all_x, all_loss, all_acc, starts = [], [], [], []
    for row in rows:
        n = len(row.get("train_loss", ()))
        if not n:
            continue
        phase = "warm-up" if row["generation"] == 0 else "fine-tuning"
        first = row["supernet_steps"] - n
        xs = list(range(first + 1, first + n + 1))
        if phase == "fine-tuning":
            starts.append(first + 0.5)
            if steps[phase]:
                for series in (steps, loss, acc):
                    series[phase].append(None)
        steps[phase] += xs
        loss[phase] += row["train_loss"]
        acc[phase] += row["train_accuracy"]
        all_x += xs
        all_loss += row["train_loss"]
        all_acc += row["train_accuracy"]
    grid = Grid(2, 1, ("loss", "accuracy on the training batch"), vspace=0.1, shared_x=True)
    window = max(1, min(25, len(all_x) // 15))
    colors = {"warm-up": "#9ecae1", "fine-tuning": "#fdae6b"}
    traces = []
    for r, (label, data, total) in enumerate((("loss", loss, all_loss), ("accuracy", acc, all_acc)), start=1):
        for phase in phases:
            traces.append(go.Scatter(x=steps[phase], y=data[phase], mode="lines+markers", name=f"{phase} {label}",
                                     legendgroup=phase, marker={"size": 3, "color": colors[phase]},
                                     line={"width": 1, "color": colors[phase]}, **grid.on(r, 1)))
        traces.append(go.Scatter(x=all_x, y=_moving_average(total, window), mode="lines",
                                 name=f"{label} (moving average)", legendgroup="avg",
                                 line={"width": 2, "color": "#08519c" if r == 1 else "#a63603"}, **grid.on(r, 1)))
    grid.x(2, 1, title=axis_title("supernet training step"))
    grid.y(1, 1, title=axis_title("loss"))
    grid.y(2, 1, title=axis_title("accuracy"))
    shapes = [{"type": "line", "xref": "x2", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
               "line": {"color": "#bbb", "dash": "dot", "width": 1}} for x in starts]
    return make_figure(traces, grid, "Supernet training", height=460, shapes=shapes)


# --- population -------------------------------------------------------------------------------------------
def diversity_figure(rows: Sequence[Row]) -> go.Figure:
    """Population diversity per generation: distinct genotypes and mean per-gene entropy (bits).

    Traces: 'distinct genotypes', 'population size' (top), 'mean gene entropy' (bottom). Genes are the 32
    canonical genes of `Genotype.encode` (per node: input, op, input, op).
    """
    gens = [r["generation"] for r in rows]
    grid = Grid(2, 1, ("distinct genotypes in the population", "mean per-gene entropy"), shared_x=True)
    traces = [
        go.Scatter(x=gens, y=[distinct(r["population"]) for r in rows], mode="lines+markers",
                   name="distinct genotypes", line={"color": "#636efa"}, **grid.on(1, 1)),
        go.Scatter(x=gens, y=[len(r["population"]) for r in rows], mode="lines", name="population size",
                   line={"color": "#999", "dash": "dot"}, **grid.on(1, 1)),
        go.Scatter(x=gens, y=[gene_entropy(r["population"]) for r in rows], mode="lines+markers",
                   name="mean gene entropy", line={"color": "#ab63fa"}, **grid.on(2, 1)),
    ]
    grid.x(2, 1, title=axis_title(GENERATION), **_generation_axis(rows))
    grid.x(1, 1, **_generation_axis(rows))
    grid.y(1, 1, title=axis_title("genotypes"), rangemode="tozero")
    grid.y(2, 1, title=axis_title("bits"), rangemode="tozero")
    return make_figure(traces, grid, "Population diversity", height=440)


def front_line(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """The non-dominated (params, fitness) points (`ga.pareto_front`: no other point has fewer-or-equal params and
    higher fitness), each once, by params: the steps of the front's line."""
    front = pareto_front([(fit, -params) for params, fit in points])
    return sorted(dict.fromkeys(points[i] for i in front))


def fitness_vs_params_figure(rows: Sequence[Row]) -> go.Figure:
    """Fitness vs parameters of every evaluated individual, coloured by generation.

    Traces: 'evaluated' (all generations), 'last population', and 'Pareto front' of the last generation's
    candidates (only fitness values computed under the same weights are compared).
    """
    ids = genotype_ids(rows)
    xs, ys, gens, custom = [], [], [], []
    for row in rows:
        for ind in row.get("individuals", ()):
            xs.append(ind["params"])
            ys.append(ind["fitness"])
            gens.append(row["generation"])
            custom.append([ids[ind["genotype"]], ind["role"], row["generation"]])
    last = rows[-1] if rows else None
    front = front_line([(i["params"], i["fitness"]) for i in last["individuals"]]) if last else []
    traces = [
        go.Scatter(x=xs, y=ys, mode="markers", name="evaluated", customdata=custom,
                   marker={"color": gens, "colorscale": "Viridis", "size": 7, "opacity": 0.75, "showscale": bool(gens),
                           "colorbar": {"title": {"text": GENERATION}, "thickness": 10, "dtick": 1}},
                   hovertemplate="%{customdata[0]} %{customdata[1]}, generation %{customdata[2]}<br>"
                                 "%{x:,} params, fitness %{y:.4f}<extra></extra>"),
        go.Scatter(x=list(last["params"]) if last else [], y=list(last["fitness"]) if last else [], mode="markers",
                   name="last population", hoverinfo="skip",
                   marker={"symbol": "circle-open", "size": 14, "color": "#d62728", "line": {"width": 2}}),
        go.Scatter(x=[p for p, _ in front], y=[f for _, f in front], mode="lines", name="Pareto front",
                   line={"shape": "hv", "color": "#d62728", "dash": "dash"}, hoverinfo="skip"),
    ]
    grid = Grid()
    grid.x(title=axis_title("parameters (search network)"))
    grid.y(title=axis_title(FITNESS))
    return make_figure(traces, grid, "Fitness vs parameters")


def fitness_vs_flops_figure(rows: Sequence[Row]) -> go.Figure:
    """Fitness vs FLOPs per image of the last generation, its non-dominated (Pareto) front marked, earlier
    generations faded (`nasviz.viz.front.front_figure`): fitness values measured under different supernet weights
    are never put on one front (fair re-evaluation's principle). Empty for histories that did not record FLOPs."""
    return front_figure(rows, "flops", rows[-1]["generation"] if rows else None, earlier=True)


FIGURES = {
    "fitness": fitness_figure,
    "parents_offspring": parents_offspring_figure,
    "before_after": before_after_figure,
    "op_frequency": op_frequency_figure,
    "training_curves": training_curves_figure,
    "diversity": diversity_figure,
    "fitness_vs_params": fitness_vs_params_figure,
    "fitness_vs_flops": fitness_vs_flops_figure,
}
"""Every figure by name, each `f(rows) -> go.Figure`."""


def all_figures(rows: Sequence[Row]) -> dict[str, go.Figure]:
    """Every figure of `FIGURES`, built from `rows`, and, for a run in a space with a ground-truth table, those of
    `TRUTH_FIGURES` (supernet fitness vs the truth, the pick's true percentile per generation)."""
    from nasviz.viz.truth import TRUTH_FIGURES, has_truth

    figures = {name: build(rows) for name, build in FIGURES.items()}
    if has_truth(rows):
        figures.update({name: build(rows) for name, build in TRUTH_FIGURES.items()})
    return figures
