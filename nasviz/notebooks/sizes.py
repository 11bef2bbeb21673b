"""The size-budget lesson: a limit taken from what a run evaluated, and the fitness-vs-size fronts of runs
with and without it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from nasviz.errors import ConfigError
from nasviz.notebooks.tables import html_table

SIZE_LABELS = {"params": "parameters", "flops": "FLOPs per image", "latency_ms": "predicted latency (ms)"}


def size_limit(rows: Sequence[dict], quantile: float = 0.5, size: str = "params") -> int:
    """The `quantile` of the sizes ("params" or "flops") of every network a run evaluated (history rows): as
    `max_params`/`max_flops`, it admits about that share of the networks the run saw."""
    if not 0 < quantile <= 1:
        raise ConfigError(f"quantile={quantile} is out of range; allowed: (0, 1]")
    values = sorted(i[size] for row in rows for i in row["individuals"] if isinstance(i.get(size), int))
    if not values:
        raise ConfigError(f"the run's history records no {size!r}; allowed: a history of this nasviz version")
    return values[round(quantile * (len(values) - 1))]


def fronts_figure(runs: Mapping[str, Sequence[dict]], size: str = "params", limit: int | None = None):
    """Fitness vs `size` of everything each run evaluated (faint markers) and each run's non-dominated front
    (a staircase); `limit` as a dashed vertical line. Each run's fitness comes from its own supernet."""
    import plotly.graph_objects as go

    from nasviz.viz.front import front_points

    fig = go.Figure()
    colors = ("#636efa", "#ef553b", "#00cc96", "#ab63fa")
    for k, (name, rows) in enumerate(runs.items()):
        points = front_points(rows, size)
        front = sorted((p for p in points if p["front"]), key=lambda p: p["size"])
        color = colors[k % len(colors)]
        fig.add_scatter(x=[p["size"] for p in points], y=[p["fitness"] for p in points], mode="markers",
                        name=f"{name}: evaluated", marker={"color": color, "opacity": 0.35, "size": 7})
        fig.add_scatter(x=[p["size"] for p in front], y=[p["fitness"] for p in front], mode="lines+markers",
                        name=f"{name}: front", line={"shape": "hv", "color": color}, marker={"size": 10})
    if limit is not None:
        fig.add_vline(x=limit, line={"dash": "dash", "color": "#444"}, annotation_text=f"limit {limit:,}")
    fig.update_layout(title={"text": f"Fitness vs {SIZE_LABELS[size]}: the non-dominated fronts", "x": 0.01},
                      template="plotly_white", height=440, xaxis_title=f"{SIZE_LABELS[size]} (search network)",
                      yaxis_title="fitness (validation accuracy)")
    return fig


def fronts_table(runs: Mapping[str, Sequence[dict]], size: str = "params"):
    """One line per run: networks evaluated, the largest evaluated, the front's size and its members' range."""
    from nasviz.viz.front import front_points

    lines = []
    for name, rows in runs.items():
        points = front_points(rows, size)
        front = [p for p in points if p["front"]]
        lines.append({"run": name, "networks evaluated": len(points),
                      f"largest ({SIZE_LABELS[size]})": max((p["size"] for p in points), default=None),
                      "on the front": len(front), "best fitness": max((p["fitness"] for p in points), default=None),
                      "smallest on the front": min((p["size"] for p in front), default=None)})
    return html_table(lines, caption="Fronts of fitness vs size (each run judged by its own supernet)")
