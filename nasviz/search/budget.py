"""A search's size budget: the parameters and FLOPs of a genotype's search-width network (counted once per
genotype), the limits `max_params` / `max_flops`, and the check, before any training, that the limits leave
architectures to search.

    sizes = Sizes(lambda g: measure_search_network(g, (1, 28, 28), 10, 8, 5), DARTS.key)
    limits = Limits(max_params=40_000)
    limits.admits(sizes(genotype))      # what the GA's `accept` predicate asks
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from nasviz.errors import ConfigError
from nasviz.search import ga
from nasviz.space.genotypes import Genotype, SearchSpace
from nasviz.space.network import SearchNetwork, count_flops, count_params

SIZE_TRIES = 200
"""Random draws per individual before limits that admit too few architectures are refused."""


@dataclass(frozen=True)
class Size:
    """A network's trainable parameters and FLOPs of one forward pass on one image (torch's FLOP counter)."""

    params: int
    flops: int


def measure_search_network(genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int, channels: int,
                           layers: int) -> Size:
    """The size of `genotype`'s search-width network (`SearchNetwork`), as `count_params` and `count_flops` count
    it. The network is built on the meta device (no random numbers drawn) and given uninitialised CPU memory to
    run on: torch's FLOP counter is several times faster on real tensors than on meta ones."""
    with torch.device("meta"):
        net = SearchNetwork(genotype, input_shape[0], num_classes, channels, layers)
    net = net.to_empty(device="cpu")
    return Size(count_params(net), count_flops(net, input_shape))


class Sizes:
    """Sizes of genotypes, measured by `measure` once per `key` (genotypes with one key build one network)."""

    def __init__(self, measure: Callable[[Genotype], Size], key: Callable[[Genotype], str]) -> None:
        self.measure, self.key = measure, key
        self.measured: dict[str, Size] = {}
        """Every size measured so far, by genotype key."""

    def __call__(self, genotype: Genotype) -> Size:
        key = self.key(genotype)
        if key not in self.measured:
            self.measured[key] = self.measure(genotype)
        return self.measured[key]


@dataclass(frozen=True)
class Limits:
    """Largest parameters and FLOPs a search may evaluate (None: no limit)."""

    max_params: int | None = None
    max_flops: int | None = None

    def __bool__(self) -> bool:
        return self.max_params is not None or self.max_flops is not None

    def __str__(self) -> str:
        return " and ".join(f"{name}={value}" for name, value in self._set())

    def _set(self) -> list[tuple[str, int]]:
        return [(n, v) for n, v in (("max_params", self.max_params), ("max_flops", self.max_flops)) if v is not None]

    def admits(self, size: Size) -> bool:
        """Whether a network of `size` is within the limits."""
        return (self.max_params is None or size.params <= self.max_params) and \
            (self.max_flops is None or size.flops <= self.max_flops)

    def ga_rule(self, sizes: Callable[[Genotype], Size]) -> dict:
        """The GA's keyword arguments that keep its draws within the limits (none without limits)."""
        return {"accept": lambda g: self.admits(sizes(g)), "max_tries": SIZE_TRIES} if self else {}

    def check_smallest(self, smallest: Size, where: str) -> None:
        """ConfigError (one line) when a limit is below `smallest`, the least each size can be (`where` says of
        which networks, e.g. 'darts network at channels=8, layers=5')."""
        for name, value in self._set():
            least = smallest.params if name == "max_params" else smallest.flops
            if value < least:
                unit = "parameters" if name == "max_params" else "FLOPs per image"
                raise ConfigError(f"{name}={value} leaves no architecture: the smallest {where} has {least:,} "
                                  f"{unit}; allowed: {name} >= {least} or none")


def smallest(space: SearchSpace, size_of: Callable[[Genotype], Size]) -> Size:
    """The least parameters and the least FLOPs of the networks whose every edge has one operation (each node
    reading inputs 0 and 1), over the space's operations: the smallest networks of the space wherever one
    operation is the cheapest on every edge, as the parameter-free pooling is (no parameters, and no FLOPs
    for torch's counter) in the built-in spaces."""
    genes = space.nodes * (1 if space.tied else 2)
    sizes = [size_of(space.from_genes([((op, 0), (op, 1))] * genes)) for op in space.ops]
    return smallest_of(sizes)


def smallest_of(sizes: Iterable[Size]) -> Size:
    """The least parameters and the least FLOPs among `sizes` (e.g. every entry of a ground-truth table)."""
    sizes = list(sizes)
    return Size(min(s.params for s in sizes), min(s.flops for s in sizes))


def check_limits(limits: Limits, population: int, least: tuple[Size, str], sizes: Callable[[Genotype], Size],
                 rng_ga: random.Random, seen: set[str], space: SearchSpace) -> None:
    """Before any training: ConfigError (one line) unless the size `limits` admit networks of `space` (`least`: the
    smallest sizes and which networks those are) and an initial population of `population` (drawn here on a copy of
    the GA's generator `rng_ga`, as the warm-up's end will)."""
    smallest_size, where = least
    limits.check_smallest(smallest_size, where)
    rng = random.Random()
    rng.setstate(rng_ga.getstate())
    try:
        ga.random_population(population, rng, seen, space, **limits.ga_rule(sizes))
    except RuntimeError:
        raise ConfigError(
            f"{limits} leaves too few networks: fewer than population={population} found in {SIZE_TRIES} "
            f"random draws each (the smallest {where} has {smallest_size.params:,} parameters, "
            f"{smallest_size.flops:,} FLOPs); allowed: larger limits or none") from None
