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

SIZES = {"flops": "FLOPs per image (search network)", "params": "parameters (search network)"}


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


def front_figure(rows: Sequence[Row], size: str = "flops", generation: int | None = None) -> go.Figure:
    """Fitness vs `size` ("flops" or "params") of everything evaluated, coloured by generation.

    Traces: 'evaluated' (every point), 'non-dominated' (the front's points, ringed) and 'Pareto front' (the
    staircase through them). Individuals without a `size` value (histories that did not record it) are left
    out. With SFT-GA the supernet changes between generations, so `generation=k` compares like with like."""
    points = front_points(rows, size, generation)
    ids = genotype_ids(rows)
    front = sorted((p for p in points if p["front"]), key=lambda p: (p["size"], p["fitness"]))
    custom = [[ids.get(p["genotype"], -1), p["role"], p["generation"]] for p in points]
    label = "FLOPs" if size == "flops" else "params"
    hover = ("#%{customdata[0]} %{customdata[1]}, generation %{customdata[2]}<br>"
             f"%{{x:,}} {label}, fitness %{{y:.4f}}<extra></extra>")
    gens = [p["generation"] for p in points]
    traces = [
        go.Scatter(x=[p["size"] for p in points], y=[p["fitness"] for p in points], mode="markers", name="evaluated",
                   customdata=custom, hovertemplate=hover,
                   marker={"color": gens, "colorscale": "Viridis", "size": 7, "opacity": 0.7, "showscale": bool(gens),
                           "colorbar": {"title": {"text": GENERATION}, "thickness": 10, "dtick": 1}}),
        go.Scatter(x=[p["size"] for p in front], y=[p["fitness"] for p in front], mode="markers",
                   name="non-dominated", hoverinfo="skip",
                   marker={"symbol": "circle-open", "size": 14, "color": "#d62728", "line": {"width": 2}}),
        go.Scatter(x=[p["size"] for p in front], y=[p["fitness"] for p in front], mode="lines", name="Pareto front",
                   line={"shape": "hv", "color": "#d62728", "dash": "dash"}, hoverinfo="skip"),
    ]
    grid = Grid()
    grid.x(title=axis_title(SIZES[size]))
    grid.y(title=axis_title(FITNESS))
    scope = "every generation" if generation is None else f"generation {generation}"
    return make_figure(traces, grid, f"Fitness vs {label} ({scope}): {len(front)} non-dominated of {len(points)}")
