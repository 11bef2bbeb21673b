"""The genealogy figure: the population of one generation traced back to generation 0.

One node per individual (x: the generation it was born, y: its place among that generation's newcomers shown, the
fittest on top), coloured by its latest fitness up to the generation shown; an edge from each parent to its
child, solid for a mutation, dashed for a crossover; the population of the generation shown ringed. Hover: id,
operator, parents, fitness and the genotype's two cells; each node's `customdata[0]` is its id
(`nasviz.runs.lineage`), so a click inspects it (`nasviz.viz.explorer`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from nasviz.runs import lineage
from nasviz.viz.common import Row, cell_summary
from nasviz.viz.layout import GENERATION, Grid, axis_title, make_figure

EDGE_STYLES = {"mutation": {"color": "#7f7f7f", "width": 1}, "crossover": {"color": "#1f77b4", "width": 1,
                                                                            "dash": "dash"}}
"""How an edge is drawn, by the kind of the child's operator (a crossover with mutation is drawn as a crossover)."""


def fitness_at(record: dict[str, Any], generation: int) -> float | None:
    """The individual's fitness as of `generation` (its last value measured up to then)."""
    values = [g["fitness"] for g in record["generations"] if g["generation"] <= generation]
    return values[-1] if values else None


def family(rows: Sequence[Row], generation: int | None = None,
           records: dict[str, dict[str, Any]] | None = None) -> tuple[list[str], list[str]]:
    """(the population's ids at `generation` (default: the last row's), every one of their known ancestors and
    themselves, oldest first)."""
    records = lineage.individuals(rows) if records is None else records
    if not rows:
        return [], []
    row = next((r for r in rows if r["generation"] == generation), rows[-1])
    population = [key for key, record in records.items()
                  if any(g["generation"] == row["generation"] and g["selected"] for g in record["generations"])]
    tree: set[str] = set()
    for key in population:
        tree.update(lineage.ancestors(records, key))
    ordered = [key for key in records if key in tree]
    return population, ordered


def genealogy_figure(rows: Sequence[Row], generation: int | None = None,
                     records: dict[str, dict[str, Any]] | None = None) -> go.Figure:
    """The family tree of generation `generation`'s population (default: the last). Traces: 'mutation' and
    'crossover' (edges), 'individuals' (nodes, customdata [id, genotype]), 'population' (rings: the population
    of the generation shown)."""
    records = lineage.individuals(rows) if records is None else records
    shown = rows[-1]["generation"] if rows and generation is None else (generation if rows else 0)
    population, tree = family(rows, shown, records)
    place: dict[str, tuple[float, float]] = {}
    for born in sorted({records[k]["born"] for k in tree if records[k]["born"] is not None}):
        members = sorted((k for k in tree if records[k]["born"] == born),
                         key=lambda k: -(fitness_at(records[k], shown) or 0.0))
        for y, key in enumerate(members):
            place[key] = (born, -y)
    edges: dict[str, tuple[list, list]] = {"mutation": ([], []), "crossover": ([], [])}
    for key in tree:
        record = records[key]
        kind = "crossover" if str(record["operator"]).startswith("crossover") else "mutation"
        for parent in record["parents"] or ():
            if parent in place and key in place:
                xs, ys = edges[kind]
                xs += [place[parent][0], place[key][0], None]
                ys += [place[parent][1], place[key][1], None]
    nodes = [k for k in tree if k in place]
    traces = [go.Scatter(x=xs, y=ys, mode="lines", name=f"{kind} edge", line=EDGE_STYLES[kind], hoverinfo="skip")
              for kind, (xs, ys) in edges.items()]
    fitness = [fitness_at(records[k], shown) for k in nodes]
    traces.append(go.Scatter(
        x=[place[k][0] for k in nodes], y=[place[k][1] for k in nodes], mode="markers", name="individuals",
        customdata=[[k, records[k]["genotype"]] for k in nodes], text=[hover_text(records[k], shown) for k in nodes],
        hovertemplate="%{text}<extra></extra>",
        marker={"size": 11, "color": [f if f is not None else 0.0 for f in fitness], "colorscale": "Viridis",
                "showscale": bool(nodes), "colorbar": {"title": {"text": "fitness"}, "thickness": 10},
                "line": {"width": 1, "color": "#333"}}))
    ringed = [k for k in population if k in place]
    traces.append(go.Scatter(x=[place[k][0] for k in ringed], y=[place[k][1] for k in ringed], mode="markers",
                             name="population", hoverinfo="skip",
                             marker={"size": 17, "symbol": "circle-open", "color": "#d62728", "line": {"width": 2}}))
    grid = Grid()
    grid.x(title=axis_title(f"{GENERATION} born"), dtick=1)
    grid.y(showticklabels=False, zeroline=False, showgrid=False)
    title = (f"Genealogy of generation {shown}'s population ({len(nodes)} individuals)" if nodes
             else "Genealogy: no lineage recorded yet")  # the legend tells mutation (solid) from crossover (dashed)
    return make_figure(traces, grid, title)


def hover_text(record: dict[str, Any], generation: int | None = None) -> str:
    """An individual in a few lines of HTML: id, operator and parents, fitness, the two cells."""
    fitness = fitness_at(record, generation) if generation is not None else (
        record["generations"][-1]["fitness"] if record["generations"] else None)
    parents = record["parents"]
    lines = [f"<b>{html.escape(record['id'])}</b> {html.escape(str(record['operator'] or 'origin unknown'))}"
             f", born in generation {record['born']}",
             "parents: " + (", ".join(html.escape(str(p)) for p in parents) if parents else
                            ("none" if parents == [] else "unknown")),
             "fitness: " + ("n/a" if fitness is None else f"{fitness:.4f}")]
    for cell in ("normal", "reduce"):
        lines.append(f"{cell}: {html.escape(cell_summary(record['genotype'], cell))}")
    return "<br>".join(lines)
