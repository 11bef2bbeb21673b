"""The inspector: one individual of a search in full, for the dashboard and the replay.

Its two cells drawn, its genotype text ready to copy, parameters and FLOPs, the table's truth where the space has
one, its fitness story (a small line over the supernet steps, one mark per measurement: each after a generation's
fine-tuning), its parents with the genes that changed highlighted, and, generation by generation, whether it
survived the selection and against whom (the last survivor: the cut).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from nasviz import lineage
from nasviz.viz.common import OP_SHORT, Row
from nasviz.viz.layout import FITNESS, Grid, axis_title, make_figure
from nasviz.viz.widgets import cells_view

HIGHLIGHT = "background:#ffe08a"
"""CSS of a changed gene in the parents' table."""


def story_figure(record: dict[str, Any] | None) -> go.Figure:
    """The individual's fitness at every measurement, over the supernet step it was measured at. Traces:
    'after fine-tuning' (the fitness the search used), 'before fine-tuning' (the diagnostic measurement)."""
    story = record["story"] if record else []
    traces = []
    for stage, name, style in (("after", "after fine-tuning", {"mode": "lines+markers"}),
                               ("before", "before fine-tuning", {"mode": "markers",
                                                                 "marker": {"symbol": "circle-open", "size": 9}})):
        points = [e for e in story if e.get("stage", "after") == stage]
        traces.append(go.Scatter(x=[e["step"] for e in points], y=[e["fitness"] for e in points], name=name,
                                 customdata=[e["generation"] for e in points],
                                 hovertemplate="generation %{customdata}, step %{x}<br>fitness %{y:.4f}"
                                               "<extra></extra>", **style))
    grid = Grid()
    grid.x(title=axis_title("supernet step"))
    grid.y(title=axis_title(FITNESS))
    title = f"Fitness story of {record['id']}" if record else "Fitness story"
    return make_figure(traces, grid, title, height=260, margin={"l": 60, "r": 10, "t": 60, "b": 40})


def _edge(edge: Sequence) -> str:
    op, inp = edge
    return f"{OP_SHORT.get(op, op)}←{inp}"


def changes_html(record: dict[str, Any], records: dict[str, dict[str, Any]]) -> str:
    """Its parents and what changed: per gene, which parent it came from, the mutated genes highlighted with
    old → new."""
    parents = record["parents"]
    if parents is None:
        return "<p><i>parents unknown (a run recorded before lineage)</i></p>"
    if not parents:
        return f"<p>no parents: {html.escape(str(record['operator']))} (a random genotype)</p>"
    changes = record["changes"] or {}
    mutated = {m["gene"]: m for m in changes.get("mutations", ())}
    # a crossover: every gene and the parent it came from; a mutation: the genes it changed
    sources = dict(enumerate(changes["genes_from"])) if changes.get("genes_from") else {k: parents[0] for k in mutated}
    lines = [f"<p>{html.escape(str(record['operator']))} of "
             + ", ".join(f"<code>{html.escape(str(p))}</code>" for p in parents) + "</p>",
             "<table style='border-collapse:collapse;font-size:12px;font-family:monospace'>"
             "<tr><th style='text-align:left;padding:1px 6px'>gene</th><th style='text-align:left;padding:1px 6px'>"
             "from</th><th style='text-align:left;padding:1px 6px'>change</th></tr>"]
    for k, source in sorted(sources.items()):
        m = mutated.get(k)
        where = f"{k} ({m['cell']} node {m['node']})" if m else f"{k}"
        change = f"{_edge(m['old'])} → {_edge(m['new'])}" if m else ""
        style = f" style='{HIGHLIGHT}'" if m else ""
        lines.append(f"<tr{style}><td style='padding:1px 6px'>{html.escape(where)}</td><td style='padding:1px 6px'>"
                     f"{html.escape(str(source))}</td><td style='padding:1px 6px'>{html.escape(change)}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def selections_html(record: dict[str, Any]) -> str:
    """Generation by generation: its role, fitness, rank in the region and whether it survived, against whom."""
    lines = ["<table style='border-collapse:collapse;font-size:12px'>"
             "<tr><th style='text-align:left;padding:1px 6px'>generation</th><th style='text-align:left;padding:1px"
             " 6px'>as</th><th style='text-align:left;padding:1px 6px'>fitness</th><th style='text-align:left;"
             "padding:1px 6px'>rank</th><th style='text-align:left;padding:1px 6px'>selection</th></tr>"]
    for g in record["generations"]:
        cut = "" if g["cut"] is None else f"{g['cut']:.4f} ({g['cut_id']})"
        verdict = (f"kept ({g['kept']} of {g['of']}; cut at {cut})" if g["selected"]
                   else f"<b>dropped</b>: the last survivor was {html.escape(cut)}")
        fitness = "n/a" if g["fitness"] is None else f"{g['fitness']:.4f}"
        lines.append(f"<tr><td style='padding:1px 6px'>{g['generation']}</td><td style='padding:1px 6px'>"
                     f"{html.escape(str(g['role']))}</td><td style='padding:1px 6px'>{fitness}</td>"
                     f"<td style='padding:1px 6px'>{g['rank']}/{g['of']}</td><td style='padding:1px 6px'>{verdict}"
                     "</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def facts_html(record: dict[str, Any]) -> str:
    """Heading, genotype text (selectable, to copy), sizes and the table's truth."""
    truth = record.get("truth")
    sizes = [f"{record['params']:,} parameters" if record.get("params") is not None else "",
             f"{record['flops']:,} FLOPs" if record.get("flops") is not None else ""]
    truth_text = ""
    if isinstance(truth, dict) and truth.get("accuracy") is not None:
        truth_text = (f"<br>table truth (trained from scratch): accuracy {truth['accuracy']:.4f}"
                      + (f", percentile {truth['percentile']:.0f}" if truth.get("percentile") is not None else ""))
    return (f"<b style='font-size:14px'>Individual {html.escape(record['id'])}</b> · "
            f"{html.escape(str(record['operator'] or 'origin unknown'))}, born in generation {record['born']}<br>"
            f"{' · '.join(s for s in sizes if s)}{truth_text}<br>"
            "<textarea readonly rows='2' style='width:100%;font-family:monospace;font-size:11px' "
            f"onclick='this.select()'>{html.escape(record['genotype'])}</textarea>")


class Inspector:
    """A panel showing one individual (`show`); `update(rows)` gives it the history to read from."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.shown: str | None = None
        """The id of the individual shown (None: nothing yet)."""
        self.facts = widgets.HTML("<b>Inspector</b><br><i>click an individual in a figure to inspect it</i>")
        self.cells = widgets.Box([])
        self.story = go.FigureWidget(story_figure(None))
        self.parents = widgets.HTML()
        self.selections = widgets.HTML()
        self.widget = widgets.VBox([self.facts, self.cells, self.story, self.parents, self.selections],
                                   layout=widgets.Layout(border="1px solid #ddd", padding="6px", width="100%"))
        self.widget.add_class("nasviz-inspector")

    def update(self, rows: Sequence[Row]) -> None:
        """Read the individuals of `rows` (and redraw the one shown, whose story may have grown)."""
        self.records = lineage.individuals(rows)
        if self.shown in self.records:
            self.show(self.shown)

    def show(self, individual: str) -> dict[str, Any]:
        """Inspect `individual` (an id or a genotype text); returns its record."""
        record = lineage.find(self.records, individual)
        self.shown = record["id"]
        self.facts.value = facts_html(record)
        self.cells.children = [cells_view(record["genotype"], "")]
        fig = story_figure(record)
        with self.story.batch_update():
            for old, new in zip(self.story.data, fig.data):
                old.update(x=new.x, y=new.y, customdata=new.customdata)
            self.story.layout.title.text = fig.layout.title.text
        self.parents.value = "<b>Parents</b>" + changes_html(record, self.records)
        self.selections.value = "<b>Selections</b>" + selections_html(record)
        return record
