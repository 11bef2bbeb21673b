"""What notebook 05 shows of the evidence benchmarks: precomputed results over many seeds, judged by the table.

The numbers come from `python -m benchmarks ranking` and `python -m benchmarks methods` (see docs/benchmarks.md);
`benchmarks/evidence.py` exports their per-seed values into the small JSON file shipped here, so a class sees
twenty searches per method without running them.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from nasviz.analysis import mean_with_interval

if TYPE_CHECKING:
    import plotly.graph_objects as go

HEIGHT = 420
EVIDENCE_FILE = "evidence-mini.json"


def load_evidence(path: str | Path | None = None) -> dict:
    """The shipped evidence summary (or the file at `path`)."""
    if path is not None:
        return json.loads(Path(path).read_text())
    return json.loads((resources.files("nasviz.notebooks") / "data" / EVIDENCE_FILE).read_text())


def _layout(title: str, y: str, x: str = "") -> dict:
    return {"height": HEIGHT, "template": "plotly_white", "title": {"text": title},
            "yaxis": {"title": {"text": y}, "rangemode": "tozero"}, "xaxis": {"title": {"text": x}},
            "margin": {"t": 70}}


def regret_figure(evidence: dict) -> go.Figure:
    """Regret (points below the table's best) of each method's returned network, one dot per seed."""
    import plotly.graph_objects as go

    fig = go.Figure(layout=_layout("Regret of the returned network, one dot per search seed<br>"
                                   "<sup>0 = the best network of the space; lower is better</sup>",
                                   "regret (accuracy points)"))
    for variant, values in evidence["regret"].items():
        fig.add_trace(go.Box(y=[100 * v for v in values], name=variant, boxpoints="all", jitter=0.4,
                             pointpos=0, showlegend=False))
    return fig


def regret_table(evidence: dict) -> list[dict]:
    """Per method: mean regret with a 95 % bootstrap interval over seeds, and the best network it evaluated."""
    rows = []
    for variant, values in evidence["regret"].items():
        e, x = mean_with_interval(values), mean_with_interval(evidence["explored_regret"][variant])
        rows.append({"method": variant, "seeds": e.n, "regret of the pick (points)":
                     f"{100 * e.value:.2f} [{100 * e.low:.2f}, {100 * e.high:.2f}]",
                     "regret of the best evaluated (points)": f"{100 * x.value:.2f} [{100 * x.low:.2f}, "
                                                               f"{100 * x.high:.2f}]"})
    return rows


def tau_figure(evidence: dict) -> go.Figure:
    """Kendall tau-b of each supernet against the table, per architecture set: mean over seeds with a 95 %
    interval, beside the table's own seed-to-seed tau-b (the ceiling)."""
    import plotly.graph_objects as go

    fig = go.Figure(layout=_layout("How well each supernet ranks, against the table (mean over seeds, 95 % "
                                   "interval)<br><sup>A = after warm-up, FT = after SFT-GA's fine-tuning, C = the "
                                   "same extra steps on uniform paths; ceiling = the table against itself</sup>",
                                   "Kendall τ-b", "architecture set"))
    sets = list(evidence["tau_b"])
    for net in ("A", "FT", "C", "ceiling"):
        means, low, high = [], [], []
        for s in sets:
            values = [v for v in (evidence["ceiling"][s] if net == "ceiling" else evidence["tau_b"][s][net])
                      if v is not None]
            if not values:  # e.g. no architecture of the set has two table seeds
                means.append(None)
                low.append(0.0)
                high.append(0.0)
                continue
            e = mean_with_interval(values)
            means.append(e.value)
            low.append(e.value - e.low)
            high.append(e.high - e.value)
        fig.add_trace(go.Bar(x=sets, y=means, name=net, error_y={"type": "data", "array": high, "arrayminus": low}))
    fig.update_layout(barmode="group", yaxis={"rangemode": "normal"})
    return fig


def fitness_images_figure(evidence: dict) -> go.Figure:
    """Kendall tau-b of the fine-tuned supernet on the search region against the table, by the number of images
    the fitness is measured on (mean over seeds with a 95 % interval)."""
    import plotly.graph_objects as go

    sizes = list(evidence["fitness_images"])
    fig = go.Figure(layout=_layout("Ranking the search region: more fitness images, better ranking?",
                                   "Kendall τ-b (FT, region)", "fitness images"))
    stats = [mean_with_interval([v for v in evidence["fitness_images"][n] if v is not None]) for n in sizes]
    fig.add_trace(go.Scatter(x=[int(n) for n in sizes], y=[e.value for e in stats], mode="lines+markers",
                             error_y={"type": "data", "array": [e.high - e.value for e in stats],
                                      "arrayminus": [e.value - e.low for e in stats]}, showlegend=False))
    ticks = sorted(int(n) for n in sizes)  # label the measured sizes only (a log axis's own ticks read "3 4 5 …")
    fig.update_layout(xaxis={"type": "log", "title": {"text": "fitness images"}, "tickmode": "array",
                             "tickvals": ticks, "ticktext": [f"{n:,}" for n in ticks]},
                      yaxis={"rangemode": "normal"})
    return fig
