"""Exploring a search: the genealogy figure and the inspector side by side, and click-to-inspect on figures.

A click on a point that stands for an individual (the fitness, before/after, fitness-vs-size, supernet-vs-truth
figures and the genealogy: their `customdata[0]` is its lineage id, `nasviz.viz.common.genotype_ids`) shows that
individual in the inspector. The dashboard and the replay each hold one `Explorer` and call `update` with the
rows they show and `connect` on their figures after drawing them (plotly keeps a trace's click handler only while
the trace is updated in place, so `connect` is repeated).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from nasviz.runs import lineage
from nasviz.viz.clicks import SCOPE, ClickRelay
from nasviz.viz.common import Row
from nasviz.viz.genealogy import genealogy_figure
from nasviz.viz.inspector import Inspector
from nasviz.viz.widgets import FIGURE_WIDTH, boxed, figure_widget, row, sync


class Explorer:
    """The genealogy of the population shown and an inspector of any individual clicked."""

    def __init__(self, figure_width: int | None = FIGURE_WIDTH) -> None:
        self.figure_width = figure_width
        self.rows: list[Row] = []
        self.generation: int | None = None
        self.errors: list[str] = []
        """Tracebacks of exceptions raised by clicks (a click never raises into the front end)."""
        self.inspector = Inspector()
        self.genealogy = figure_widget(genealogy_figure([]), figure_width)
        panel = widgets.Box([self.inspector.widget], layout=widgets.Layout(
            flex="1 1 430px", min_width="300px", overflow="auto", max_height="760px"))
        self.relay = ClickRelay(self._on_relayed_click)
        """Sends the clicks on every figure of the view to `_on_relayed_click`, also while a cell awaits the search
        (`nasviz.viz.clicks`: then a FigureWidget's own click never arrives)."""
        self.widget = row(boxed(self.genealogy, figure_width), panel, self.relay)
        self.widget.add_class("nasviz-explorer")
        self.connect([self.genealogy])

    def update(self, rows: Sequence[Row], generation: int | None = None) -> None:
        """Show the genealogy of `generation`'s population (default: the last of `rows`) and read `rows` for
        the inspector."""
        self.rows, self.generation = list(rows), generation
        records = lineage.individuals(self.rows)
        sync(self.genealogy, genealogy_figure(self.rows, generation, records), self.figure_width)
        self.connect([self.genealogy])
        self.inspector.records = records
        if self.inspector.shown in records:
            self.inspector.show(self.inspector.shown)

    def connect(self, figures: Iterable[go.FigureWidget]) -> None:
        """Make a click on any point of `figures` that stands for an individual inspect it."""
        for fig in figures:
            for trace in fig.data:
                if getattr(trace, "customdata", None) is not None and hasattr(trace, "on_click"):
                    trace.on_click(self._on_click)

    def inspect(self, individual: str) -> dict[str, Any]:
        """Show `individual` (id or genotype text) in the inspector; returns its record."""
        return self.inspector.show(individual)

    def _on_click(self, trace, points, _state) -> None:
        try:
            if not points.point_inds:
                return
            key = self.resolve(trace.customdata[points.point_inds[0]])
            if key is not None:
                self.inspect(key)
        except Exception:  # a click must never break the front end; keep the error for inspection
            self.errors.append(traceback.format_exc())

    def _on_relayed_click(self, customdata: Any) -> None:
        try:
            key = self.resolve(customdata)
            if key is not None and key in self.inspector.records:
                self.inspect(key)
        except Exception:  # a click must never break the front end; keep the error for inspection
            self.errors.append(traceback.format_exc())

    @staticmethod
    def resolve(custom: Any) -> str | None:
        """The individual a point's customdata names: its id (the first value), or None."""
        first = custom[0] if isinstance(custom, (list, tuple)) and len(custom) else custom
        return first if isinstance(first, str) and first != "?" else None


class ExplorableFigure:
    """A figure whose points stand for individuals (their `customdata[0]` is a lineage id), above an `Explorer` of
    `rows`: a click on a point, or on a genealogy node, shows that individual in the inspector. For a notebook's
    own figure, e.g. notebook 07's supernet fitness against the truth."""

    def __init__(self, fig: go.Figure, rows: Sequence[Row], generation: int | None = None,
                 figure_width: int | None = FIGURE_WIDTH) -> None:
        self.explorer = Explorer(figure_width)
        self.explorer.update(rows, generation)
        self.figure = figure_widget(fig, figure_width)
        self.explorer.connect([self.figure])
        self.widget = widgets.VBox([boxed(self.figure, figure_width), self.explorer.widget])
        self.widget.add_class(SCOPE)  # the explorer's relay listens to this figure too (`nasviz.viz.clicks`)

    def inspect(self, individual: str) -> dict[str, Any]:
        return self.explorer.inspect(individual)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
