"""A generation's offspring Q (shared/DESIGN.md §1): N genotypes never evaluated before, each with how it was made.

SFT-GA and the GA breed them from the population (`ga.breed`: binary tournaments, node-level uniform crossover,
per-node mutation); random search draws them at random. Under size limits every draw is re-drawn until within;
limits that leave too few unseen networks end the search with a one-line ConfigError.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from nasviz.errors import ConfigError
from nasviz.search import ga
from nasviz.search.budget import Limits, Size
from nasviz.search.population import Population
from nasviz.space.genotypes import Genotype, SearchSpace

if TYPE_CHECKING:
    from nasviz.search.config import SearchConfig


def offspring(c: SearchConfig, population: Population, rng: random.Random, seen: set[str], space: SearchSpace,
              limits: Limits, sizes: Callable[[Genotype], Size], generation: int) -> list[ga.Child]:
    """Q for `generation`: `c.population` children of `population` (or random genotypes, method=random) whose keys
    are not in `seen`, within `limits` (`sizes` measures them)."""
    rule = limits.ga_rule(sizes)
    try:
        if c.method == "random":
            return [ga.Child(g, ga.Provenance("random"))
                    for g in ga.random_population(c.population, rng, seen, space, **rule)]
        return ga.breed(population.genotypes, population.fitness, rng, n=c.population, p_c=c.p_crossover,
                        p_m=c.p_mutation, seen=seen, space=space, **rule,
                        params=population.params if c.tie_break == "params" else None)
    except RuntimeError as exc:
        if not limits:
            raise
        raise ConfigError(f"{limits} leaves too few unseen networks for generation {generation} "
                          f"({exc}); allowed: larger limits or none") from None
