"""What notebook 07 calls: the supernet and the search next to the ground-truth table."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

import plotly.graph_objects as go

from nasviz.analysis import Estimate, kendall_tau_b, mean_with_interval, tau_with_interval
from nasviz.space.genotypes import Genotype
from nasviz.train.steps import fitness

HEIGHT = 400


def random_sample(table, n: int, seed: int = 0) -> list[Genotype]:
    """`n` architectures of the table drawn at random (a fixed set for a seed)."""
    keys = sorted(e.genotype for e in table)
    return [table.space.parse(k) for k in random.Random(seed).sample(keys, min(n, len(keys)))]


def supernet_scores(search, genotypes: Sequence[Genotype]) -> list[float]:
    """Each genotype's fitness under the search's current supernet weights (BatchNorm recalibrated per path)."""
    return [fitness(search.supernet, g, search.calibration, search.fitness_batches) for g in genotypes]


def ranking_against_truth(scores: Sequence[float], truth: Sequence[float], seed: int = 0) -> Estimate | None:
    """Kendall tau-b of supernet scores against table accuracy, with a bootstrap interval over architectures."""
    return tau_with_interval(list(scores), list(truth), seed=seed)


def ranking_figure(scores: Sequence[float], truth: Sequence[float], title: str) -> go.Figure:
    """Scatter of supernet score vs table accuracy."""
    tau = kendall_tau_b(list(scores), list(truth))
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white",
                            "title": f"{title} (Kendall τ-b {'n/a' if tau is None else f'{tau:+.2f}'})",
                            "xaxis": {"title": {"text": "supernet fitness"}},
                            "yaxis": {"title": {"text": "table accuracy"}}})
    fig.add_trace(go.Scatter(x=list(scores), y=list(truth), mode="markers", name="architectures"))
    return fig


def regret_summary(regrets: dict[str, list[float]]) -> list[dict]:
    """Per method: mean regret with a bootstrap interval, median, and how often it found the very best."""
    rows = []
    for method, values in regrets.items():
        e = mean_with_interval(values)
        rows.append({"method": method, "searches": len(values), "mean regret (points)": round(100 * e.value, 3),
                     "95% interval": f"[{100 * e.low:.3f}, {100 * e.high:.3f}]",
                     "median regret": round(100 * statistics.median(values), 3),
                     "found the best": f"{sum(v == 0 for v in values) / len(values):.0%}"})
    return rows


def curves_figure(curves: dict[str, list[list[float]]], best: float) -> go.Figure:
    """Mean regret of the best-so-far over many searches, per method, against the number of evaluations."""
    fig = go.Figure(layout={"height": HEIGHT, "template": "plotly_white",
                            "title": "regret of the best architecture evaluated so far (mean over searches)",
                            "xaxis": {"title": {"text": "evaluations"}},
                            "yaxis": {"title": {"text": "regret (points of test accuracy)"}, "rangemode": "tozero"}})
    for method, runs in curves.items():
        length = min(len(r) for r in runs)
        mean = [100 * (best - statistics.fmean(r[i] for r in runs)) for i in range(length)]
        fig.add_trace(go.Scatter(x=list(range(1, length + 1)), y=mean, mode="lines", name=method))
    return fig
