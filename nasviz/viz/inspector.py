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

from nasviz.runs import lineage
from nasviz.viz.common import OP_SHORT, Row
from nasviz.viz.widgets import cells_view

HIGHLIGHT = "background:#ffe08a"
"""CSS of a changed gene in the parents' table."""


def story_svg(record: dict[str, Any] | None, width: int = 380, height: int = 110) -> str:
    """The individual's fitness story as a small inline SVG: fitness over the supernet step, a line through the
    measurements the search used (filled marks: after each fine-tuning), open marks for the diagnostic ones
    before fine-tuning; each mark's tooltip names its generation, step and value. Empty text without a story."""
    story = [e for e in (record or {}).get("story", ()) if isinstance(e.get("fitness"), (int, float))
             and e["fitness"] == e["fitness"] and isinstance(e.get("step"), int)]
    if not story:
        return ""
    pad, steps, values = 28, [e["step"] for e in story], [e["fitness"] for e in story]
    x0, x1 = min(steps), max(steps) or 1
    y0, y1 = min(values), max(values)
    span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1

    def at(e: dict) -> tuple[float, float]:
        return (pad + (width - 2 * pad) * (e["step"] - x0) / span_x,
                height - pad + 8 - (height - 2 * pad) * (e["fitness"] - y0) / span_y)

    after = [e for e in story if e.get("stage", "after") == "after"]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(at, after))
    marks = []
    for e in story:
        x, y = at(e)
        filled = e.get("stage", "after") == "after"
        tip = html.escape(f"generation {e['generation']}, step {e['step']}: fitness {e['fitness']:.4f}"
                          + ("" if filled else " (before fine-tuning)"))
        marks.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{'#1f77b4' if filled else 'white'}' "
                     f"stroke='#1f77b4'><title>{tip}</title></circle>")
    return (f"<svg class='nasviz-story' width='{width}' height='{height}' style='font:10px sans-serif'>"
            f"<polyline points='{line}' fill='none' stroke='#1f77b4' stroke-width='1.5'/>{''.join(marks)}"
            f"<text x='2' y='12'>{y1:.3f}</text><text x='2' y='{height - 12}'>{y0:.3f}</text>"
            f"<text x='{pad}' y='{height - 2}'>step {x0}</text>"
            f"<text x='{width - pad}' y='{height - 2}' text-anchor='end'>step {x1}</text></svg>")


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
        self.story = widgets.HTML()
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
        self.story.value = ("<b>Fitness story</b> (each mark: one measurement; filled: after a generation's "
                            "fine-tuning, the value selection used)<br>" + story_svg(record))
        self.parents.value = "<b>Parents</b>" + changes_html(record, self.records)
        self.selections.value = "<b>Selections</b>" + selections_html(record)
        return record
