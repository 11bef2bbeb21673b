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


def yardstick_noise(scores: Sequence[float], truth: Sequence[float]) -> float:
    """How noisy the supernet is as a yardstick, in accuracy units: the standard deviation of the table accuracies
    around their least-squares line on the supernet scores (what the scores leave unexplained); with too few or
    constant scores, the accuracies' own standard deviation."""
    xs, ys = list(scores), list(truth)
    if len(xs) < 3 or statistics.pvariance(xs) == 0:
        return statistics.pstdev(ys) if len(ys) > 1 else 0.0
    slope, intercept = statistics.linear_regression(xs, ys)
    return statistics.fmean((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys)) ** 0.5


def pick_vs_found(rows: Sequence[dict]) -> str:
    """In words: the true percentile of what the search returned against the best it evaluated, and when."""
    best_seen, seen_at = None, None
    for r in rows:
        for i in r.get("individuals", ()):
            p = (i.get("truth") or {}).get("percentile")
            if p is not None and (best_seen is None or p > best_seen):
                best_seen, seen_at = p, r["generation"]
    pick = ((rows[-1].get("best") or {}).get("truth") or {}).get("percentile") if rows else None
    if pick is None or best_seen is None:
        return "no ground truth recorded for this run"
    where = ("about what a random draw gives on average (the 50th)" if 40 <= pick <= 60 else
             "above a random draw's average (the 50th)" if pick > 60 else "below a random draw's average (the 50th)")
    text = (f"The search returned a network at the {pick:.0f}th percentile of the space, {where}. The best network "
            f"it evaluated was at the {best_seen:.0f}th percentile, first seen in generation {seen_at}.")
    if best_seen - pick >= 5:
        return text + (" It found a better network than it picked: the supernet's fitness did not recognise it"
                       " as the best.")
    return text + " It picked about the best it had seen."
