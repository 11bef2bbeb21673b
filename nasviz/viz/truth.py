"""Figures that put a search next to the ground truth (a `nasviz.table.Table`): what the supernet thinks of
the population vs what the architectures really reach when trained from scratch, and how good the search's
pick is as it goes. Pure functions of history rows (whose individuals carry a "truth" field in a space with a
table) and of the table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from nasviz.analysis import kendall_tau_b
from nasviz.viz.common import genotype_ids

Row = dict[str, Any]
HEIGHT = 380


def _truth(individual: Row) -> float | None:
    truth = individual.get("truth")
    return truth.get("accuracy") if isinstance(truth, dict) else None


def fitness_vs_truth_figure(rows: Sequence[Row], generation: int | None = None) -> go.Figure:
    """Supernet fitness (x) vs table accuracy (y) of every individual evaluated in `generation` (default: the
    last), with Kendall tau-b between the two in the title: the supernet's ranking against the truth. Trace
    'population', its points' customdata [id, genotype] (a click inspects one: `nasviz.viz.explorer`)."""
    rows = [r for r in rows if any(_truth(i) is not None for i in r.get("individuals", []))]
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white",
                            "xaxis": {"title": {"text": "supernet fitness (inherited weights)"}},
                            "yaxis": {"title": {"text": "table accuracy (trained from scratch)"}}})
    if not rows:
        fig.update_layout(title="supernet vs truth: no generation with ground truth yet")
        fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="population"))
        return fig
    row = next((r for r in rows if r["generation"] == generation), rows[-1])
    ids = genotype_ids(rows)
    people = [i for i in row["individuals"] if _truth(i) is not None and i.get("fitness") is not None]
    x, y = [i["fitness"] for i in people], [_truth(i) for i in people]
    colors = ["#1f77b4" if i.get("selected") else "#bbbbbb" for i in people]
    fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name="population", marker={"color": colors, "size": 9},
                             customdata=[[ids.get(i["genotype"], "?"), i["genotype"]] for i in people],
                             text=[f"{i.get('role')}, percentile {i['truth'].get('percentile', 0):.0f}"
                                   for i in people],
                             hovertemplate="%{customdata[0]} %{text}<br>fitness %{x:.3f}<br>truth %{y:.4f}"
                                           "<extra></extra>"))
    tau = kendall_tau_b(x, y)
    tau_text = "n/a" if tau is None else f"{tau:+.2f}"
    fig.update_layout(title=f"generation {row['generation']}: supernet fitness vs truth (Kendall τ-b {tau_text}; "
                            "blue = kept)")
    return fig


def best_percentile_figure(rows: Sequence[Row]) -> go.Figure:
    """Per generation: the table percentile of the search's current pick (its best by fitness) and of the
    best architecture it has evaluated so far (what it found vs what it picked)."""
    gens, picked, found = [], [], []
    best_seen = None
    for r in rows:
        people = [i for i in r.get("individuals", []) if _truth(i) is not None]
        if not people:
            continue
        for i in people:
            p = i["truth"].get("percentile")
            best_seen = p if best_seen is None else max(best_seen, p)
        pick = r.get("best", {}).get("truth") or {}
        gens.append(r["generation"])
        picked.append(pick.get("percentile"))
        found.append(best_seen)
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white",
                            "xaxis": {"title": {"text": "generation"}, "dtick": 1},
                            "yaxis": {"title": {"text": "table percentile (100 = best of the space)"},
                                      "range": [0, 101]},
                            "title": "how good is the pick? ground-truth percentile per generation"})
    fig.add_trace(go.Scatter(x=gens, y=picked, mode="lines+markers", name="search's pick (best fitness)"))
    fig.add_trace(go.Scatter(x=gens, y=found, mode="lines+markers", name="best evaluated so far",
                             line={"dash": "dot"}))
    return fig


def accuracy_distribution_figure(table) -> go.Figure:
    """Histogram of the mean test accuracy of every architecture of a table."""
    values = [e.accuracy for e in table]
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white", "bargap": 0.05,
                            "xaxis": {"title": {"text": "test accuracy (trained from scratch)"}},
                            "yaxis": {"title": {"text": "architectures"}},
                            "title": f"{table.name}: {len(values)} architectures"})
    fig.add_trace(go.Histogram(x=values, nbinsx=40, name="architectures"))
    return fig


def op_share_figure(table, top_fraction: float = 0.1) -> go.Figure:
    """Share of each operation among the edges of the best `top_fraction` of architectures vs all of them."""
    entries = sorted(table, key=lambda e: -e.accuracy)
    top = entries[: max(1, round(top_fraction * len(entries)))]

    def shares(group) -> Counter:
        counts: Counter = Counter()
        for e in group:
            counts.update(op for op, _ in table.space.parse(e.genotype).normal)
        total = sum(counts.values())
        return Counter({op: counts[op] / total for op in table.space.ops})

    every, best = shares(entries), shares(top)
    ops = list(table.space.ops)
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white", "barmode": "group",
                            "yaxis": {"title": {"text": "share of the cell's edges"}, "rangemode": "tozero"},
                            "title": f"which operations do the best {top_fraction:.0%} use?"})
    fig.add_trace(go.Bar(x=ops, y=[every[o] for o in ops], name="all architectures"))
    fig.add_trace(go.Bar(x=ops, y=[best[o] for o in ops], name=f"best {top_fraction:.0%}"))
    return fig


def has_truth(rows: Sequence[Row]) -> bool:
    """Whether any individual of `rows` carries ground truth (a run in a space with a table)."""
    return any(_truth(i) is not None for r in rows for i in r.get("individuals", []))


TRUTH_FIGURES = {"fitness_vs_truth": fitness_vs_truth_figure, "pick_percentile": best_percentile_figure}
"""The figures of a run with ground truth, by name, each `f(rows) -> go.Figure`."""

