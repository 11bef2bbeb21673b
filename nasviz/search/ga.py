"""The genetic algorithm of SFT-GA: selection, crossover, mutation, environmental selection, path sampling.

Pure Python, no torch. Every random choice comes from a `random.Random` passed in, so a seed fixes the run.
An individual is a `Genotype`; the GA works on its genes, the canonical nodes its `SearchSpace` lets vary
(`SearchSpace.genes`: in the DARTS space 4 normal-cell nodes, then 4 reduction-cell nodes; in a space whose
reduction cell is tied to the normal cell, the normal cell's alone), each a pair of (op, input) edges with the
smaller input first. Identity (what counts as "seen") is the space's `key`.

Fitness is "higher is better" (validation accuracy); a NaN fitness ranks below every number.
None of these functions changes its arguments: `seen` sets are read, never written, so the caller adds the
keys of what it evaluates.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from nasviz.space.genotypes import DARTS, Edge, Genotype, SearchSpace

Node = tuple[Edge, Edge]
T = TypeVar("T")
Accept = Callable[[Genotype], bool]
"""A predicate on genotypes (e.g. size limits): the generation functions draw only genotypes it accepts."""

__all__ = [
    "Region",
    "balanced_rounds",
    "binary_tournament",
    "crossover",
    "environmental_selection",
    "make_offspring",
    "mutate",
    "random_population",
    "region_frequencies",
    "sample_from_region",
]


def _score(f: float) -> float:
    """Fitness for comparisons: NaN becomes -inf so it never wins."""
    return -math.inf if math.isnan(f) else f


# --- selection --------------------------------------------------------------------------------------------


def binary_tournament(fitness: Sequence[float], rng: random.Random, params: Sequence[int] | None = None) -> int:
    """Draw two distinct indices and return the fitter one (ties: fewer params if `params` is given, then the first
    drawn; without `params` a tie is thus won by either with equal chance)."""
    if len(fitness) == 0:
        raise ValueError("binary_tournament needs at least one individual")
    if len(fitness) == 1:
        return 0
    i, j = rng.sample(range(len(fitness)), 2)
    fi, fj = _score(fitness[i]), _score(fitness[j])
    if fi != fj:
        return i if fi > fj else j
    if params is not None and params[i] != params[j]:
        return i if params[i] < params[j] else j
    return i


def environmental_selection(fitness: Sequence[float], params: Sequence[int], n: int,
                            rng: random.Random | None = None) -> list[int]:
    """(mu + lambda) survival: indices of the best `n`, by fitness descending; ties by fewer params, then index,
    or, with `rng`, in a random order drawn from it (one shuffle of all the indices, whether or not there are ties,
    so the generator advances the same way every time)."""
    if len(params) != len(fitness):
        raise ValueError(f"fitness has {len(fitness)} values but params has {len(params)}")
    if not 0 <= n <= len(fitness):
        raise ValueError(f"cannot keep {n} of {len(fitness)} individuals")
    if rng is None:
        tie = [(p, i) for i, p in enumerate(params)]
    else:
        tie = list(range(len(fitness)))
        rng.shuffle(tie)
    order = sorted(range(len(fitness)), key=lambda i: (-_score(fitness[i]), tie[i]))
    return order[:n]


# --- variation --------------------------------------------------------------------------------------------


def crossover(a: Genotype, b: Genotype, rng: random.Random, p_c: float, space: SearchSpace = DARTS) -> Genotype:
    """With probability `p_c`, node-level uniform crossover (each node whole from `a` or `b`); else a copy of `a`."""
    if rng.random() >= p_c:
        return a
    nodes = [na if rng.random() < 0.5 else nb for na, nb in zip(space.genes(a), space.genes(b))]
    return space.from_genes(nodes)


def _mutate_node(node: Node, j: int, rng: random.Random, ops: tuple[str, ...] = DARTS.ops) -> Node:
    """Replace one of the node's two edges by a different valid edge, drawn uniformly among all of them.

    `j` is the node's position in its cell, so its inputs lie in 0..j+1. The new edge keeps an input different
    from the other edge's input; its op, its input or both may change.
    """
    side = rng.randrange(2)
    old, other = node[side], node[1 - side]
    choices = [(op, inp) for inp in range(j + 2) if inp != other[1] for op in ops if (op, inp) != old]
    new = rng.choice(choices)
    return (new, other) if new[1] < other[1] else (other, new)


def mutate(g: Genotype, rng: random.Random, p_m: float, space: SearchSpace = DARTS) -> Genotype:
    """Each node, with probability `p_m`, changes exactly one of its two (op, input) edges (see `_mutate_node`)."""
    nodes = [
        _mutate_node(node, space.node_position(k), rng, space.ops) if rng.random() < p_m else node
        for k, node in enumerate(space.genes(g))
    ]
    return space.from_genes(nodes)


def _fresh(rng: random.Random, taken: set[str], seen: set[str], max_tries: int, space: SearchSpace,
           accept: Accept | None = None) -> Genotype:
    """A random genotype whose key is in neither `taken` nor `seen` (and that `accept` accepts, if given)."""
    for _ in range(max_tries):
        g = space.sample(rng)
        key = space.key(g)
        if key not in seen and key not in taken and (accept is None or accept(g)):
            return g
    raise RuntimeError(f"no unseen{' acceptable' if accept else ''} genotype found in {max_tries} random draws")


def make_offspring(
    parents: Sequence[Genotype],
    fitness: Sequence[float],
    rng: random.Random,
    *,
    n: int,
    p_c: float,
    p_m: float,
    seen: set[str],
    params: Sequence[int] | None = None,
    max_tries: int = 1000,
    space: SearchSpace = DARTS,
    accept: Accept | None = None,
) -> list[Genotype]:
    """`n` new children: two binary tournaments pick the parents, then crossover, then mutation.

    A child whose key is in `seen` (everything evaluated so far) or was already produced in this batch, or that
    `accept` (if given) refuses, is re-drawn; after `max_tries` failed draws for one child, a fresh unseen random
    genotype that `accept` accepts takes its place (RuntimeError if none is found in `max_tries` draws).
    `seen` is not modified: add the children's keys yourself once they are evaluated.
    """
    if len(parents) == 0:
        raise ValueError("make_offspring needs at least one parent")
    if len(fitness) != len(parents):
        raise ValueError(f"{len(parents)} parents but {len(fitness)} fitness values")
    if params is not None and len(params) != len(parents):
        raise ValueError(f"{len(parents)} parents but {len(params)} params values")
    children: list[Genotype] = []
    taken: set[str] = set()
    for _ in range(n):
        child = None
        for _ in range(max_tries):
            a = parents[binary_tournament(fitness, rng, params)]
            b = parents[binary_tournament(fitness, rng, params)]
            candidate = mutate(crossover(a, b, rng, p_c, space), rng, p_m, space)
            if space.key(candidate) not in seen and space.key(candidate) not in taken and \
                    (accept is None or accept(candidate)):
                child = candidate
                break
        if child is None:
            child = _fresh(rng, taken, seen, max_tries, space, accept)
        taken.add(space.key(child))
        children.append(child)
    return children


def random_population(n: int, rng: random.Random, seen: set[str], space: SearchSpace = DARTS, *,
                      accept: Accept | None = None, max_tries: int = 10_000) -> list[Genotype]:
    """`n` distinct random genotypes, none of whose keys is in `seen` (which is not modified) and each accepted
    by `accept` if given; RuntimeError if `max_tries` draws find none for one of them."""
    population: list[Genotype] = []
    taken: set[str] = set()
    for _ in range(n):
        g = _fresh(rng, taken, seen, max_tries, space, accept)
        taken.add(space.key(g))
        population.append(g)
    return population


# --- path sampling in the search region -------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Gene counts of a set of genotypes, per gene k (a canonical node, see `SearchSpace.genes`).

    `pairs[k]` counts the node's (input_a, input_b) pairs; `ops[k][inp]` counts the ops used on the node's
    edge from input `inp`.
    """

    pairs: tuple[Counter[tuple[int, int]], ...]
    ops: tuple[dict[int, Counter[str]], ...]
    size: int


def region_frequencies(genotypes: Iterable[Genotype], space: SearchSpace = DARTS) -> Region:
    """Count, for every node, its input pairs and, for every (node, input) edge, its ops, over `genotypes`."""
    genes = space.nodes * (1 if space.tied else 2)
    pairs: list[Counter[tuple[int, int]]] = [Counter() for _ in range(genes)]
    ops: list[dict[int, Counter[str]]] = [{} for _ in range(genes)]
    size = 0
    for g in genotypes:
        size += 1
        for k, (ea, eb) in enumerate(space.genes(g)):
            pairs[k][(ea[1], eb[1])] += 1
            for op, inp in (ea, eb):
                ops[k].setdefault(inp, Counter())[op] += 1
    if size == 0:
        raise ValueError("region_frequencies needs at least one genotype")
    return Region(pairs=tuple(pairs), ops=tuple(ops), size=size)


def _weighted(counts: Counter[T], rng: random.Random) -> T:
    """Draw a key of `counts` with probability proportional to its count (keys sorted, so seeds reproduce)."""
    keys = sorted(counts)
    return rng.choices(keys, weights=[counts[k] for k in keys])[0]


def sample_from_region(region: Region, rng: random.Random, space: SearchSpace = DARTS) -> Genotype:
    """Draw a path gene by gene: each node's input pair from the region's pair counts, then each edge's op
    from the region's op counts for that (node, input) edge. Always valid, since every gene was seen."""
    nodes = []
    for k in range(len(region.pairs)):
        a, b = _weighted(region.pairs[k], rng)
        nodes.append(((_weighted(region.ops[k][a], rng), a), (_weighted(region.ops[k][b], rng), b)))
    return space.from_genes(nodes)


def balanced_rounds(members: Sequence[T], steps: int, rng: random.Random) -> list[T]:
    """`steps` members in shuffled rounds over all of `members`: each appears steps // len or one more time."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if steps and not members:
        raise ValueError("balanced_rounds needs at least one member")
    out: list[T] = []
    while len(out) < steps:
        round_ = list(members)
        rng.shuffle(round_)
        out.extend(round_[: steps - len(out)])
    return out


# =========================================================================================================
# Multi-objective selection (NSGA-II): non-dominated sorting and crowding distance on (fitness up, params
# down). A separate section, added for issue #15; pure Python like the rest of this module.
# =========================================================================================================

Objectives = tuple[float, ...]
"""One individual's objective values, every one to be maximised."""


def size_objectives(fitness: Sequence[float], params: Sequence[float]) -> list[Objectives]:
    """(fitness, -params) per individual, both maximised. A NaN fitness becomes (-inf, -inf): worse than every
    individual with a number, whatever its size."""
    if len(params) != len(fitness):
        raise ValueError(f"fitness has {len(fitness)} values but params has {len(params)}")
    return [(-math.inf, -math.inf) if math.isnan(f) else (float(f), -float(p)) for f, p in zip(fitness, params)]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether `a` Pareto-dominates `b` (objectives maximised): at least as good in all, better in one."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def non_dominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Deb's fast non-dominated sort: the indices of `points` in fronts, best first, each front in index order.

    Front 0 holds the points no other point dominates; front k those dominated only by points of fronts < k.
    Equal points are in the same front. O(objectives x n^2)."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]  # i -> the points i dominates
    count = [0] * n  # how many points dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points of two maximised objectives, in index order: front 0 of
    `non_dominated_sort`, found by one sweep in O(n log n) (for figures over long histories)."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best, k = [], -math.inf, 0
    while k < len(order):  # groups of equal first objective, best first
        group = [order[k]]
        while k + len(group) < len(order) and points[order[k + len(group)]][0] == points[order[k]][0]:
            group.append(order[k + len(group)])
        top = points[group[0]][1]
        if top > best or not front and top == best:  # a tie with a better first objective is dominated
            front += [i for i in group if points[i][1] == top]
            best = top
        k += len(group)
    return sorted(front)


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> list[float]:
    """NSGA-II crowding distance of each member of `front` (indices into `points`), in `front`'s order.

    Per objective the members are sorted; the two extremes get infinity, every other member adds the gap
    between its two neighbours divided by the objective's range (an objective with zero or infinite range
    adds nothing). Larger means lonelier, so preferred."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return [math.inf] * len(front)
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: (points[i][m], i))
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        span = high - low
        if span == 0 or not math.isfinite(span):
            continue
        for prev, i, nxt in zip(ordered, ordered[1:], ordered[2:]):
            distance[i] += (points[nxt][m] - points[prev][m]) / span
    return [distance[i] for i in front]


def pareto_selection(fitness: Sequence[float], params: Sequence[int], n: int) -> list[int]:
    """NSGA-II environmental selection of `n` individuals on (fitness up, params down).

    Whole fronts are kept best first; the front that does not fit is cut by crowding distance (larger first,
    ties: higher fitness, fewer params, lower index). Returns indices in that order of preference."""
    if len(params) != len(fitness):
        raise ValueError(f"fitness has {len(fitness)} values but params has {len(params)}")
    if not 0 <= n <= len(fitness):
        raise ValueError(f"cannot keep {n} of {len(fitness)} individuals")
    points = size_objectives(fitness, params)
    kept: list[int] = []
    for front in non_dominated_sort(points):
        if len(kept) >= n:
            break
        crowding = dict(zip(front, crowding_distance(points, front)))
        ranked = sorted(front, key=lambda i: (-crowding[i], -points[i][0], -points[i][1], i))
        kept += ranked[: n - len(kept)]
    return kept
