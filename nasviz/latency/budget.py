"""A search's latency: each genotype's latency predicted from the run's profile (`latency_profile`), the least
latency of its space (for refusing a `max_latency_ms` that leaves nothing), and the returned network measured
end to end once the search is done. Used by the search's size budget; never imports the search."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from nasviz.latency.layout import Layout
from nasviz.latency.profile import Profile, breakdown, fastest, load_profile, predict


class LatencyBudget:
    """The predicted latency of genotypes of one search (from `profile`, read from `path`)."""

    def __init__(self, profile: Profile, path: str) -> None:
        self.profile, self.path = profile, path
        self.fastest_ms = fastest(profile)
        """The least latency the profile predicts for any network of the space."""
        self.measured: dict[str, dict[str, Any]] = {}
        """End-to-end timings made so far, by genotype text."""

    def predict(self, genotype) -> float:
        return predict(genotype, self.profile)

    def measure(self, genotype, repeats: int = 30) -> dict[str, Any]:
        """`genotype`'s network timed end to end with the profile's runtime, threads and batch (once per genotype);
        "device_matches" says whether this machine's CPU is the profile's."""
        from nasviz.latency.runtime import machine
        from nasviz.latency.validation import measure

        key = str(genotype)
        if key not in self.measured:
            timed = measure([genotype], self.profile, repeats=repeats)[0]
            here = machine(self.profile.runtime, self.profile.threads)
            self.measured[key] = {"measured_ms": timed[f"{self.profile.statistic}_ms"],
                                  "statistic": self.profile.statistic, "spread_ms": timed["spread_ms"],
                                  "device_matches": here["cpu"] == self.profile.machine.get("cpu")}
        return self.measured[key]


def search_layout(config, shape: tuple[int, int, int], num_classes: int) -> Layout:
    """The layout of a search's networks: its space, images of `shape`, classes, channels and layers."""
    return Layout(config.space, shape[0], shape[1], shape[2], num_classes, config.channels, config.layers)


def config_layout(config) -> Layout:
    """The layout of the networks a search with `config` (a `SearchConfig`) runs (a built-in dataset is not loaded)."""
    from nasviz.data.loading import dataset_info

    shape, classes = dataset_info(config.dataset)
    if config.image_size is not None:
        shape = (shape[0], config.image_size, config.image_size)
    return search_layout(config, shape, classes)


def attach(search: Any) -> LatencyBudget | None:
    """Give `search` a latency budget when its config names a profile (None otherwise): the profile must time this
    search's network layout (one-line error otherwise), and every size the search measures then carries the
    predicted latency."""
    c = search.config
    if c.latency_profile is None:
        return None
    if search.data is not None:
        layout = search_layout(c, search.data.shape, search.data.num_classes)
    else:  # fitness from a table: the dataset is not loaded
        layout = config_layout(c)
    budget = LatencyBudget(load_profile(c.latency_profile, layout), c.latency_profile)
    measure = search.sizes.measure
    search.sizes.measure = lambda g: dataclasses.replace(measure(g), latency_ms=budget.predict(g))
    return budget


def with_fastest(least: tuple[Any, str], budget: LatencyBudget | None) -> tuple[Any, str]:
    """The smallest sizes of a search's networks (`Evaluator.smallest`) with, given a latency budget, the least
    predicted latency of its space."""
    size, where = least
    return (size, where) if budget is None else (dataclasses.replace(size, latency_ms=budget.fastest_ms), where)


def result_fields(search: Any) -> dict[str, Any]:
    """result.json's "latency": the profile, the limit, the best network's predicted latency (its terms) and, once
    the search is done, its measured one."""
    budget: LatencyBudget | None = getattr(search, "latency", None)
    if budget is None or not len(search.population):
        return {}
    best = search.population[0].genotype
    prof = budget.profile
    out: dict[str, Any] = {
        "profile": str(Path(budget.path)), "runtime": prof.runtime, "threads": prof.threads, "batch": prof.batch,
        "cpu": prof.machine.get("cpu"), "max_latency_ms": search.config.max_latency_ms,
        "fastest_ms": budget.fastest_ms, "best_predicted_ms": budget.predict(best),
        "best_predicted_terms_ms": breakdown(best, prof)}
    if search.done and search.ranks.main:
        out["best_measured"] = budget.measure(best)
    return {"latency": out}
