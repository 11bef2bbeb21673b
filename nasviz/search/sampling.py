"""Path-sampling strategies for training the supernet: which path (genotype) each step trains."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nasviz.search.ga import balanced_rounds, region_frequencies, sample_from_region
from nasviz.space.genotypes import DARTS, Genotype, SearchSpace
from nasviz.train.steps import PathSampler


def uniform_sampler(rng: random.Random, space: SearchSpace = DARTS) -> PathSampler:
    """SPOS: every step trains a path drawn uniformly from the whole space."""
    return lambda: space.sample(rng)


def region_sampler(
    strategy: str, region: Sequence[Genotype], steps: int, rng: random.Random, space: SearchSpace = DARTS
) -> PathSampler:
    """A sampler over the search region R (parents and offspring) for `steps` fine-tuning steps.

    'population': each step trains one member of R, in shuffled rounds (equal steps per member);
    'region': each gene drawn from R's per-gene frequencies; 'uniform': plain SPOS (no focusing).
    """
    if strategy == "uniform":
        return uniform_sampler(rng, space)
    if strategy == "region":
        frequencies = region_frequencies(region, space)
        return lambda: sample_from_region(frequencies, rng, space)
    if strategy == "population":
        order = iter(balanced_rounds(list(region), steps, rng))
        return lambda: next(order)
    raise ValueError(f"unknown path sampling {strategy!r}")
