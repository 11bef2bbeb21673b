"""The common look of nasviz's plotly figures: axis titles, subplot grids as plain layout dicts, and the
template, title, legend and `uirevision` every figure shares (`nasviz.viz.figures`, `nasviz.viz.front`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import plotly.graph_objects as go

FITNESS = "fitness (validation accuracy)"
GENERATION = "generation"
HEIGHT = 380
EMPTY_NOTE = "no data yet"
BLANK_AXIS = {"showticklabels": False, "showgrid": False, "zeroline": False, "showline": False, "ticks": "",
              "title": {"text": ""}}
"""An axis of a figure without data: drawn, but blank (`visible: False` breaks live FigureWidget views)."""


@lru_cache(maxsize=1)
def template() -> dict:
    """The layout part of plotly's 'plotly_white' template: its look at a tenth of the cost per figure."""
    import plotly.io as pio

    white = pio.templates["plotly_white"].layout.to_plotly_json()
    keep = ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel", "paper_bgcolor", "plot_bgcolor",
            "xaxis", "yaxis", "shapedefaults", "annotationdefaults", "coloraxis", "title")
    return {"layout": {k: white[k] for k in keep if k in white}}


class Grid:
    """Subplot axes as a plain layout dict: what `make_subplots` builds, without its cost (figures are rebuilt
    on every live redraw). Row 1 is the top row."""

    def __init__(self, rows: int = 1, cols: int = 1, titles: tuple[str, ...] = (), *,
                 row_heights: list[float] | None = None, col_widths: list[float] | None = None,
                 hspace: float = 0.08, vspace: float = 0.1, shared_x: bool = False, shared_y: bool = False) -> None:
        self.rows, self.cols = rows, cols
        self.layout: dict[str, Any] = {"annotations": []}
        widths = _spans(col_widths or [1.0] * cols, hspace)
        heights = _spans(row_heights or [1.0] * rows, vspace)
        for r in range(1, rows + 1):
            for c in range(1, cols + 1):
                k = self._index(r, c)
                x0, x1 = widths[c - 1]
                top = 1.0 - heights[r - 1][0]
                y0, y1 = top - (heights[r - 1][1] - heights[r - 1][0]), top
                xaxis = {"anchor": f"y{k}", "domain": [x0, x1]}
                yaxis = {"anchor": f"x{k}", "domain": [y0, y1]}
                if shared_x and r < rows:
                    xaxis.update(matches=f"x{self._index(rows, c)}", showticklabels=False)
                if shared_y and c > 1:
                    yaxis.update(matches=f"y{self._index(r, 1)}", showticklabels=False)
                self.layout[f"xaxis{k}"], self.layout[f"yaxis{k}"] = xaxis, yaxis
                title = titles[(r - 1) * cols + c - 1] if (r - 1) * cols + c - 1 < len(titles) else ""
                if title:
                    self.layout["annotations"].append({
                        "text": title, "showarrow": False, "xref": "paper", "yref": "paper", "x": (x0 + x1) / 2,
                        "y": y1, "xanchor": "center", "yanchor": "bottom", "font": {"size": 13},
                    })

    def _index(self, r: int, c: int) -> str:
        k = (r - 1) * self.cols + c
        return "" if k == 1 else str(k)

    def on(self, r: int = 1, c: int = 1) -> dict[str, str]:
        """Trace arguments placing a trace on subplot (r, c)."""
        k = self._index(r, c)
        return {"xaxis": f"x{k}", "yaxis": f"y{k}"}

    def x(self, r: int = 1, c: int = 1, **props: Any) -> None:
        """Set properties of subplot (r, c)'s x axis."""
        self.layout[f"xaxis{self._index(r, c)}"].update(props)

    def y(self, r: int = 1, c: int = 1, **props: Any) -> None:
        """Set properties of subplot (r, c)'s y axis."""
        self.layout[f"yaxis{self._index(r, c)}"].update(props)


def _spans(sizes: list[float], gap: float) -> list[tuple[float, float]]:
    """Start and end (0..1) of consecutive spans with the given relative sizes and gaps between them."""
    room = 1.0 - gap * (len(sizes) - 1)
    total = sum(sizes)
    out, start = [], 0.0
    for size in sizes:
        end = start + room * size / total
        out.append((start, min(end, 1.0)))
        start = end + gap
    return out


def axis_title(text: str) -> dict:
    return {"text": text}


def make_figure(traces: list, grid: Grid, title: str, height: int = HEIGHT, **layout: Any) -> go.Figure:
    """The common look: white template, title, legend on top, and a `uirevision` that keeps zoom on updates."""
    titled = bool(grid.layout["annotations"])  # subplot titles: the legend goes above them
    full = {
        "template": template(),
        "title": {"text": title, "x": 0.01, "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 95 if titled else 70, "b": 45},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0 + (24 / (height - 140) if titled else 0),
                   "xanchor": "right", "x": 1.0,
                   "font": {"size": 11}},
        "uirevision": "nasviz",
        **grid.layout,
        **layout,
    }
    full["annotations"] = grid.layout["annotations"] + layout.get("annotations", [])
    if not any(_has_points(t) for t in traces):  # no data: no meaningless default axes (-1..6, -1..4), a note
        for key in [k for k in full if k.startswith(("xaxis", "yaxis"))]:
            full[key] = {**full[key], **BLANK_AXIS}
        if not layout.get("annotations"):  # the note alone: a lower row's subplot title would run into it
            full["annotations"] = [note(EMPTY_NOTE)]
    return go.Figure(data=traces, layout=full)


def _has_points(t: Any) -> bool:
    """Whether a trace (a plotly trace or its dict) has any data point; the y = x guide line does not count."""
    props = t if isinstance(t, dict) else t.to_plotly_json()
    if props.get("name") == "y = x":
        return False
    values = props.get("z") if props.get("type") == "heatmap" else props.get("y")
    if values is None:
        return False
    flat = [v for row in values for v in (row if isinstance(row, (list, tuple)) else [row])]
    return any(v is not None for v in flat)


def note(text: str) -> dict:
    return {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
            "font": {"size": 14, "color": "#888"}}
