"""Accuracy against size: fitness vs FLOPs (or parameters) of every evaluated individual, with the
non-dominated (Pareto) front on (fitness up, size down) marked. A pure function of the history rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from nasviz.errors import ConfigError
from nasviz.search.ga import pareto_front
from nasviz.viz.common import Row, genotype_ids
from nasviz.viz.layout import FITNESS, GENERATION, Grid, axis_title, make_figure

SIZES = {"flops": "FLOPs per image (search network)", "params": "parameters (search network)",
         "latency_ms": "predicted latency, ms (search network, latency profile)"}
LABELS = {"flops": "FLOPs", "params": "params", "latency_ms": "ms"}


def front_points(rows: Sequence[Row], size: str = "flops", generation: int | None = None) -> list[dict]:
    """Every evaluated individual (of `generation` only, if given) that has a number for `size` and a
    fitness, as {genotype, generation, role, fitness, size, front}; `front` marks the non-dominated ones."""
    if size not in SIZES:
        raise ConfigError(f"size {size!r} is not allowed; allowed: {', '.join(SIZES)}")
    points = []
    for row in rows:
        if generation is not None and row["generation"] != generation:
            continue
        for ind in row.get("individuals", ()):
            value, fit = ind.get(size), ind.get("fitness")
            if isinstance(value, (int, float)) and isinstance(fit, (int, float)) and math.isfinite(fit):
                points.append({"genotype": ind["genotype"], "generation": row["generation"], "role": ind.get("role"),
                               "fitness": fit, "size": value, "front": False})
    for i in pareto_front([(p["fitness"], -p["size"]) for p in points]):
        points[i]["front"] = True
    return points


def front_figure(rows: Sequence[Row], size: str = "flops", generation: int | None = None, *,
                 earlier: bool = False) -> go.Figure:
    """Fitness vs `size` ("flops", "params" or "latency_ms": runs with a latency profile) of everything evaluated
    (of `generation` only, if given), coloured by generation, with its non-dominated front.

    Traces: 'earlier generations' (with `earlier` and a `generation`: the generations before it, faded, never on
    the front), 'evaluated' (every point the front is drawn from), 'non-dominated' (the front's points, ringed)
    and 'Pareto front' (the staircase through them). Individuals without a `size` value (histories that did not
    record it) are left out. With SFT-GA the supernet changes between generations, so only `generation=k`
    compares like with like (`nasviz.viz.figures.fitness_vs_flops_figure` draws the last generation's front)."""
    points = front_points(rows, size, generation)
    old = front_points([r for r in rows if r["generation"] < generation], size) if earlier and generation is not None \
        else []
    ids = genotype_ids(rows)
    front = sorted((p for p in points if p["front"]), key=lambda p: (p["size"], p["fitness"]))
    label = LABELS[size]
    hover = ("%{customdata[0]} %{customdata[1]}, generation %{customdata[2]}<br>"
             f"%{{x:,}} {label}, fitness %{{y:.4f}}<extra></extra>")

    def custom(ps: list[dict]) -> list[list]:
        return [[ids.get(p["genotype"], "?"), p["role"], p["generation"]] for p in ps]

    gens = [p["generation"] for p in points]
    many = len(set(gens)) > 1
    traces = [
        go.Scatter(x=[p["size"] for p in old], y=[p["fitness"] for p in old], mode="markers",
                   name="earlier generations", customdata=custom(old), hovertemplate=hover,
                   marker={"color": "#bbbbbb", "size": 6, "opacity": 0.35}),
        go.Scatter(x=[p["size"] for p in points], y=[p["fitness"] for p in points], mode="markers",
                   name="evaluated", customdata=custom(points), hovertemplate=hover,
                   marker={"color": gens, "colorscale": "Viridis", "size": 7, "opacity": 0.7, "showscale": many,
                           "colorbar": {"title": {"text": GENERATION}, "thickness": 10, "dtick": 1}}
                   if many else {"color": "#1f77b4", "size": 8, "opacity": 0.85}),
        go.Scatter(x=[p["size"] for p in front], y=[p["fitness"] for p in front], mode="markers",
                   name="non-dominated", hoverinfo="skip",
                   marker={"symbol": "circle-open", "size": 14, "color": "#d62728", "line": {"width": 2}}),
        go.Scatter(x=[p["size"] for p in front], y=[p["fitness"] for p in front], mode="lines", name="Pareto front",
                   line={"shape": "hv", "color": "#d62728", "dash": "dash"}, hoverinfo="skip"),
    ]
    grid = Grid()
    grid.x(title=axis_title(SIZES[size]))
    grid.y(title=axis_title(FITNESS))
    scope = "every generation" if generation is None else f"generation {generation}" + (
        ", earlier ones faded" if old else "")
    return make_figure(traces, grid, f"Fitness vs {label} ({scope}): {len(front)} non-dominated of {len(points)}")
