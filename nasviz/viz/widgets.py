"""What the dashboard and the replay are made of: their shared `RunView` and small ipywidgets/plotly helpers (the
engine never imports this)."""

from __future__ import annotations

import html
import itertools
from copy import deepcopy
from functools import lru_cache

import ipywidgets as widgets
import plotly.graph_objects as go

from nasviz.viz.cells import GraphvizMissing, cell_figure, svg_markup
from nasviz.viz.clicks import SCOPE
from nasviz.viz.common import GenotypeLike, Row, genotype_ids, population_table_html
from nasviz.viz.figures import FIGURES
from nasviz.viz.truth import fitness_vs_truth_figure, has_truth

FIGURE_WIDTH: int | None = None
"""Default pixel width of the dashboard's and the replay's figures. None: responsive — each figure takes the width
of its box and the boxes share the notebook's width (two side by side when each gets `FIGURE_BASIS` pixels,
otherwise one per row, full width; e.g. with JupyterLab's file browser open). An int fixes every figure at it."""
FIGURE_BASIS = 430
"""Preferred width (px) of a responsive figure's box: rows of at least 2 x 430 px hold two figures side by side."""
FIGURE_MIN = 300
"""Narrowest a responsive figure's box gets (px); narrower pages scroll sideways."""


_FITS = itertools.count(1)


def _size(fig: go.Figure, width: int | None) -> None:
    """`width` pixels wide, or responsive: autosize, and a new `meta.fit` so that every update is a relayout (plotly
    measures an autosized figure's element again on each relayout; plotly's widget does not on its own, and plotly's
    `responsive` config only on window resizes, not when JupyterLab's side panel opens or closes)."""
    if width:
        fig.update_layout(width=width)
    else:
        fig.update_layout(autosize=True, meta={"fit": next(_FITS)})


def figure_widget(fig: go.Figure, width: int | None = None) -> go.FigureWidget:
    """A `FigureWidget` showing `fig`: `width` pixels wide if given, else as wide as its box — measured when shown
    (see `boxed`), on every update (`sync`) and when the browser window is resized (plotly's `responsive`)."""
    _size(fig, width)
    widget = go.FigureWidget(fig)
    if not width:
        widget._config = {**widget._config, "responsive": True}
    return widget


def refit(widget: go.FigureWidget) -> None:
    """Make every view of a responsive `widget` fit its box again (a relayout that changes nothing else)."""
    if not widget.layout.width:
        widget.layout.meta = {"fit": next(_FITS)}


def sync(widget: go.FigureWidget, fig: go.Figure, width: int | None = None) -> None:
    """Make `widget` show `fig` (`width` pixels wide if given) in one batched message; traces are updated in place
    when their kinds and names match (so legend toggles survive, and with the figures' `uirevision`, zoom too),
    replaced otherwise."""
    _size(fig, width)
    height = fig.layout.height
    if not width:
        # plotly.js pins an autosized figure's width when a relayout sets its height: send the height to new views
        # only (below), never in an update, so that every update refits the figure to its box instead
        fig.layout.height = None
    # plotly leaves out empty values (no annotations, no shapes): a key the new layout lacks is cleared explicitly,
    # or the front end keeps showing it (e.g. the empty figure's "no data yet" note)
    stale = {k: None for k in widget._layout_obj._props if k not in fig.layout._props and k not in ("height", "width")}
    with widget.batch_update():
        same = len(widget.data) == len(fig.data) and all(
            old.type == new.type and old.name == new.name for old, new in zip(widget.data, fig.data)
        )
        if same:
            for old, new in zip(widget.data, fig.data):
                props = new.to_plotly_json()
                props.pop("type", None)
                props.pop("uid", None)
                old.update(props, overwrite=True)
        else:
            widget.data = []
            widget.add_traces(list(fig.data))
        widget.layout = fig.layout
    if stale:
        widget._send_relayout_msg(stale)
    # plotly's widget model mirrors restyle/relayout messages imperfectly while no view exists (a figure updated
    # before its box is displayed then fails to draw): re-send the whole state, as FigureWidget._repr_mimebundle_
    # does, so that every view created later starts from the right figure.
    widget._widget_data = deepcopy(widget._data)
    widget._widget_layout = {**deepcopy(widget._layout_obj._props), **({"height": height} if height else {})}


def boxed(child: widgets.Widget, width: int | None = FIGURE_WIDTH) -> widgets.Box:
    """`child` in a box (a FigureWidget's own `.layout` is plotly's, not a widget layout): `width` pixels wide if
    given, else a flexible one — `FIGURE_BASIS` px preferred, growing to fill its row, never under `FIGURE_MIN`."""
    if width:
        return widgets.Box([child], layout=widgets.Layout(width=f"{width + 8}px", overflow="hidden"))
    # a column box stretches its child to the box's width (a row box would shrink it to its content's, plotly's
    # 700 px default), so the figure, autosized to its element, fills the box
    box = widgets.VBox([child], layout=widgets.Layout(flex=f"1 1 {FIGURE_BASIS}px", min_width=f"{FIGURE_MIN}px",
                                                      overflow="hidden"))
    if isinstance(child, go.FigureWidget):
        # plotly's widget sizes a new view before JupyterLab has laid it out (at its 700 px default): once the box
        # is displayed (the front end counts its views), fit the figure again
        box._view_count = 0
        box.observe(lambda _change: refit(child), names="_view_count")
    return box


def full_width(width: int | None, columns: int = 2) -> str:
    """CSS max-width of what spans a row of `columns` figures: all of it when responsive."""
    return f"{columns * width + 8 * columns}px" if width else "100%"


def row(*children: widgets.Widget) -> widgets.HBox:
    """Children side by side, wrapping onto the next line when the page is too narrow."""
    return widgets.HBox(list(children), layout=widgets.Layout(flex_flow="row wrap", width="100%"))


def cells_view(genotype: GenotypeLike | None, title: str = "") -> widgets.Widget:
    """The genotype's cells as an HTML widget holding the SVG, or (without `dot`) a plotly FigureWidget."""
    heading = f"<b>{html.escape(title)}</b>" if title else ""
    if genotype is None:
        return widgets.HTML(heading + "<br><i>no genotype yet</i>")
    try:
        svg = _svg(str(genotype))
    except GraphvizMissing as exc:
        note = widgets.HTML(f"{heading}<br><small>{html.escape(str(exc))}</small>")
        return widgets.VBox([note, go.FigureWidget(cell_figure(genotype, None))])
    svg = svg.replace("<svg ", "<svg style='max-width:100%;height:auto' ", 1)
    return widgets.HTML(f"{heading}<div style='max-width:100%;overflow-x:auto'>{svg}</div>")


@lru_cache(maxsize=64)
def _svg(genotype_text: str) -> str:
    return svg_markup(genotype_text)


class RunView:
    """What the live dashboard and the replay both show under their own controls (`header`): four figures of
    the search (two rows of two), the supernet-vs-truth figure in a space with a ground-truth table, the best
    cells and the population table; it displays as its root widget."""

    LAYOUT = (("fitness", "before_after"), ("training_curves", "op_frequency"))
    """Names of the figures (`nasviz.viz.figures.FIGURES`), row by row."""

    def __init__(self, header: list[widgets.Widget], figure_width: int | None = FIGURE_WIDTH) -> None:
        self.figure_width = w = figure_width
        self.figures = {name: figure_widget(FIGURES[name]([]), w) for pair in self.LAYOUT for name in pair}
        """The live plotly FigureWidgets by name."""
        self.cells = widgets.Box([widgets.HTML("<b>Best cells</b><br><i>no genotype yet</i>")],
                                 layout=widgets.Layout(max_width=full_width(w), overflow="auto"))
        self.table = widgets.HTML(population_table_html(None),  # scrolls sideways where the page is narrower
                                  layout=widgets.Layout(overflow="auto", max_width=full_width(w)))
        rows = [row(*(boxed(self.figures[name], w) for name in pair)) for pair in self.LAYOUT]
        self.truth: go.FigureWidget | None = None
        """Supernet fitness vs the table's truth (`show_truth`; None until a run with ground truth is shown)."""
        self.truth_box = widgets.Box([])
        self.widget = widgets.VBox([*header, *rows, self.truth_box, self.cells, self.table])
        self.widget.add_class(SCOPE)  # a click on any of its figures reaches the explorer (`nasviz.viz.clicks`)
        """The root widget."""

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def draw_figure(self, name: str, fig: go.Figure) -> None:
        """Show `fig` in the figure widget `name`."""
        sync(self.figures[name], fig, self.figure_width)

    def show_truth(self, rows: list[Row], generation: int | None = None) -> go.FigureWidget | None:
        """Supernet fitness vs the table's truth for `generation` (default: the last of `rows`), where the run has
        ground truth (the mini space with its table); returns the figure's widget (None without truth)."""
        if not has_truth(rows):
            return None
        fig = fitness_vs_truth_figure(rows, generation)
        if self.truth is None:
            self.truth = figure_widget(fig, self.figure_width)
            self.truth_box.children = [boxed(self.truth, self.figure_width)]
        else:
            sync(self.truth, fig, self.figure_width)
        return self.truth

    def show_population(self, rows: list[dict], row: dict | None) -> None:
        """The population table of history row `row` (ids counted over `rows`)."""
        self.table.value = population_table_html(row, genotype_ids(rows))

    def show_best(self, genotype: GenotypeLike | None, title: str) -> None:
        self.cells.children = [cells_view(genotype, title)]
