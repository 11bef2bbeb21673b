"""Many searches whose fitness is the ground-truth table: the distribution of outcomes per method (for class,
and for calibrating the GA), cheap because nothing is trained."""

from __future__ import annotations

from collections.abc import Sequence

from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search


def best_so_far(history: Sequence[dict], table) -> list[float]:
    """Table accuracy of the best architecture evaluated so far, after each evaluation, in evaluation order
    (generation by generation, individuals in history order; re-evaluations of parents do not count)."""
    curve: list[float] = []
    best, seen = None, set()
    for row in history:
        for individual in row["individuals"]:
            key = table.space.key(table.space.parse(individual["genotype"]))
            if key in seen:
                continue
            seen.add(key)
            accuracy = table.accuracy(key)
            best = accuracy if best is None else max(best, accuracy)
            curve.append(best)
    return curve


def repeat_searches(base: SearchConfig, methods: Sequence[str], runs: int) -> tuple[dict[str, list], dict[str, list]]:
    """`runs` searches (seeds 0..runs-1) per method with `base` (a fitness=table config): each one's best-so-far
    curve (table accuracy after each evaluation) and its regret (table best minus the returned network's)."""
    curves: dict[str, list] = {m: [] for m in methods}
    regrets: dict[str, list] = {m: [] for m in methods}
    for method in methods:
        for seed in range(runs):
            search, history = Search(base.replace(method=method, seed=seed)), []
            while (row := search.step()) is not None:
                history.append(row)
            regrets[method].append(search.result()["truth"]["best_regret"])
            curves[method].append(best_so_far(history, search.truth))
    return curves, regrets
