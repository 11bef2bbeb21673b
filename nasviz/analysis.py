"""Statistics for judging searches and supernets against ground truth (all from scipy, with intervals).

- `kendall_tau_b`: the project's one Kendall tau (scipy's tau-b, which handles ties);
- `tau_with_interval`: tau-b with a bootstrap interval over the architectures;
- `mean_with_interval` / `paired_difference`: a mean (or a mean paired difference) with a bootstrap interval;
- `holm_wilcoxon`: Wilcoxon signed-rank tests of several paired comparisons, Holm-corrected;
- `precision_at_k`, `regret`: how good a ranking's top is;
- `recency_effect`: from a recorded history, whether members trained last in a fine-tuning round score higher.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A statistic with a 95 % (by default) bootstrap confidence interval and the sample size."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"

    def to_json(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def kendall(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Kendall's tau-b between two equally long sequences (scipy; ties, common among fitness values measured on a
    few hundred images, are accounted for) and its p-value; (nan, nan) where undefined (fewer than two items,
    or one sequence constant). The project's one Kendall tau."""
    from scipy.stats import kendalltau  # imported here: scipy.stats takes a second to import

    if len(x) != len(y):
        raise ValueError(f"Kendall's tau needs paired sequences, got {len(x)} and {len(y)} values")
    if len(x) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():  # scipy warns about a constant input; nan says it
        warnings.simplefilter("ignore")
        res = kendalltau(list(x), list(y))
    return float(res.statistic), float(res.pvalue)


def kendall_tau_b(a: Sequence[float], b: Sequence[float]) -> float | None:
    """`kendall`'s tau-b alone; None where it is undefined."""
    tau = kendall(a, b)[0]
    return None if math.isnan(tau) else tau


def _bootstrap(data: tuple, statistic, *, paired: bool, seed: int, confidence: float, resamples: int):
    from scipy import stats

    result = stats.bootstrap(data, statistic, paired=paired, vectorized=False, n_resamples=resamples,
                             confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def tau_with_interval(a: Sequence[float], b: Sequence[float], *, seed: int = 0, confidence: float = 0.95,
                      resamples: int = 2000) -> Estimate | None:
    """Kendall tau-b with a percentile bootstrap interval, resampling the (a, b) pairs."""
    tau = kendall_tau_b(a, b)
    if tau is None:
        return None

    def statistic(x, y):
        value = kendall_tau_b(list(x), list(y))
        return 0.0 if value is None else value

    low, high = _bootstrap((np.asarray(a), np.asarray(b)), statistic, paired=True, seed=seed,
                           confidence=confidence, resamples=resamples)
    return Estimate(tau, low, high, len(a))


def mean_with_interval(values: Sequence[float], *, seed: int = 0, confidence: float = 0.95,
                       resamples: int = 5000) -> Estimate:
    """The mean with a percentile bootstrap interval (a single value gets a zero-width interval)."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        raise ValueError("mean_with_interval needs at least one value")
    if len(x) == 1 or np.all(x == x[0]):
        return Estimate(float(x.mean()), float(x.mean()), float(x.mean()), len(x))
    low, high = _bootstrap((x,), np.mean, paired=False, seed=seed, confidence=confidence, resamples=resamples)
    return Estimate(float(x.mean()), low, high, len(x))


def paired_difference(a: Sequence[float], b: Sequence[float], **kwargs) -> Estimate:
    """Mean of a - b over paired observations (e.g. the same seed), with a bootstrap interval."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs paired sequences, got {len(a)} and {len(b)} values")
    return mean_with_interval([x - y for x, y in zip(a, b)], **kwargs)


def holm_wilcoxon(reference: Sequence[float], others: Mapping[str, Sequence[float]]) -> dict[str, dict]:
    """Wilcoxon signed-rank test of `reference` against each of `others` (paired), p-values Holm-corrected
    over the comparisons. A comparison whose differences are all zero gets p = 1."""
    from scipy import stats

    raw = {}
    for name, values in others.items():
        if len(values) != len(reference):
            raise ValueError(f"{name}: {len(values)} values, but the reference has {len(reference)}")
        diffs = [x - y for x, y in zip(reference, values)]
        raw[name] = 1.0 if all(d == 0 for d in diffs) else float(stats.wilcoxon(reference, values).pvalue)
    order = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * raw[name]))
        adjusted[name] = running
    return {name: {"p": raw[name], "p_holm": adjusted[name]} for name in others}


def precision_at_k(scores: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Share of the k best by `scores` that are among the k best by `truth` (ties broken by position)."""
    if not 1 <= k <= len(scores) == len(truth):
        raise ValueError(f"precision_at_k needs 1 <= k <= n and paired sequences (k={k}, n={len(scores)})")
    top_scores = set(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k])
    top_truth = set(sorted(range(len(truth)), key=lambda i: (-truth[i], i))[:k])
    return len(top_scores & top_truth) / k


def regret(scores: Sequence[float], truth: Sequence[float]) -> float:
    """Best true value minus the true value of the item the scores rank first (0 if the pick is the best)."""
    if not scores or len(scores) != len(truth):
        raise ValueError("regret needs paired, non-empty sequences")
    pick = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return max(truth) - truth[pick]


def rounded_to(values: Sequence[float], step: float) -> list[float]:
    """Values rounded to a grid of `step` (e.g. the table's seed noise), so that differences smaller than the
    noise become ties: Kendall tau-b then only counts the pairs the truth really separates ("sparse" tau)."""
    if not step > 0 or not math.isfinite(step):
        raise ValueError(f"step must be a positive number, got {step}")
    return [round(v / step) * step for v in values]


# --- recency: does the order of a fine-tuning round show in the fitness? --------------------------------------
def last_trained(row: Mapping) -> dict[str, float]:
    """For a history row, each trained path's last position in the row's fine-tuning round, as a share of the
    round: 0 for the first step, 1 for the last (an empty round: {})."""
    paths = row.get("trained_paths") or []
    if len(paths) < 2:
        return {p: 1.0 for p in paths}
    return {p: i / (len(paths) - 1) for i, p in enumerate(paths)}


def recency_records(rows: Sequence[Mapping]) -> list[dict]:
    """Every individual of every generation >= 1 that was trained in its generation's fine-tuning round (matched by
    its genotype text): generation, genotype, role, `position` (`last_trained`), fitness after the round, and
    `gain`: fitness minus fitness before the round (None where no 'before' was recorded)."""
    records = []
    for row in rows:
        if row.get("generation", 0) < 1:
            continue
        positions = last_trained(row)
        for ind in row.get("individuals", []):
            if ind["genotype"] not in positions:
                continue
            before = ind.get("fitness_before")
            records.append({"generation": row["generation"], "genotype": ind["genotype"], "role": ind["role"],
                            "position": positions[ind["genotype"]], "fitness": ind["fitness"],
                            "gain": None if before is None else ind["fitness"] - before})
    return records


def recency_effect(rows: Sequence[Mapping]) -> dict:
    """Whether members trained later in a fine-tuning round score higher: Kendall tau-b (`kendall`) and Spearman's
    rho (scipy) between the last-trained position and the fitness, per generation and pooled over generations
    (fitness centred on its generation's mean, so generations that differ overall do not make a correlation), and
    the same for the gain over the 'before' fitness where recorded. A correlation near 0 says the order of the
    round does not matter; a clearly positive one says the last-trained members are favoured (then consider
    lr_schedule='cosine-per-phase')."""
    from scipy.stats import spearmanr

    records = recency_records(rows)

    def correlate(xs: list[float], ys: list[float]) -> dict:
        tau, p = kendall(xs, ys)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(xs, ys)[0]) if len(xs) > 1 else math.nan
        clean = lambda v: None if math.isnan(v) else v  # noqa: E731
        return {"n": len(xs), "kendall_tau": clean(tau), "p_value": clean(p), "spearman": clean(rho)}

    def centred(key: str) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for g in sorted({r["generation"] for r in records}):
            group = [r for r in records if r["generation"] == g and r[key] is not None]
            if group:
                mean = sum(r[key] for r in group) / len(group)
                xs += [r["position"] for r in group]
                ys += [r[key] - mean for r in group]
        return xs, ys

    per_generation = []
    for g in sorted({r["generation"] for r in records}):
        group = [r for r in records if r["generation"] == g]
        per_generation.append({"generation": g, **correlate([r["position"] for r in group],
                                                            [r["fitness"] for r in group])})
    return {"per_generation": per_generation, "pooled_fitness": correlate(*centred("fitness")),
            "pooled_gain": correlate(*centred("gain")), "members": len(records)}
