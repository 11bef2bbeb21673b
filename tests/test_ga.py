"""Tests for nasviz.search.ga: selection, crossover, mutation, offspring, environmental selection, path sampling."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasviz.search.ga import (
    balanced_rounds,
    binary_tournament,
    crossover,
    environmental_selection,
    make_offspring,
    mutate,
    random_population,
    region_frequencies,
    sample_from_region,
)
from nasviz.space.genotypes import CANDIDATE_OPS, FIXTURES, NODES, Genotype, sample_genotype

seeds = st.integers(min_value=0, max_value=2**32 - 1)
probs = st.floats(min_value=0.0, max_value=1.0)


def revalidate(g: Genotype) -> Genotype:
    """Rebuild from text: raises if `g` is not a valid genotype."""
    assert isinstance(g, Genotype)
    return Genotype.parse(str(g))


def changed_edges(old: tuple, new: tuple) -> int:
    """How many of a node's two edges differ (nodes compared as sets of edges)."""
    return 2 - len(set(old) & set(new))


def all_nodes_differ(a: Genotype, b: Genotype) -> bool:
    return all(na != nb for na, nb in zip(a.nodes(), b.nodes()))


def pair_of_genotypes(seed: int) -> tuple[Genotype, Genotype]:
    rng = random.Random(seed)
    while True:
        a, b = sample_genotype(rng), sample_genotype(rng)
        if all_nodes_differ(a, b):
            return a, b


# --- crossover --------------------------------------------------------------------------------------------


@given(seeds, probs)
def test_crossover_child_is_valid_and_each_node_comes_from_a_parent(seed, p_c):
    rng = random.Random(seed)
    a, b = sample_genotype(rng), sample_genotype(rng)
    child = crossover(a, b, rng, p_c)
    revalidate(child)
    for nc, na, nb in zip(child.nodes(), a.nodes(), b.nodes()):
        assert nc in (na, nb)


@given(seeds)
def test_crossover_with_p_c_zero_copies_a(seed):
    rng = random.Random(seed)
    a, b = sample_genotype(rng), sample_genotype(rng)
    assert crossover(a, b, rng, 0.0).key() == a.key()


def test_crossover_with_p_c_one_mixes_nodes_half_and_half():
    a, b = pair_of_genotypes(0)
    rng = random.Random(1)
    from_b = Counter()
    trials = 2000
    for _ in range(trials):
        child = crossover(a, b, rng, 1.0)
        for k, (nc, nb) in enumerate(zip(child.nodes(), b.nodes())):
            from_b[k] += nc == nb
    for k in range(2 * NODES):
        assert 0.45 < from_b[k] / trials < 0.55


def test_crossover_probability_is_respected():
    a, b = pair_of_genotypes(3)
    rng = random.Random(4)
    trials = 4000
    copies = sum(crossover(a, b, rng, 0.3).key() == a.key() for _ in range(trials))
    # copy of a: no crossover (0.7) or crossover that picked a everywhere (0.3 / 256)
    assert abs(copies / trials - (0.7 + 0.3 / 256)) < 0.03


# --- mutation ---------------------------------------------------------------------------------------------


@given(seeds)
def test_mutation_with_p_m_one_changes_exactly_one_edge_of_every_node(seed):
    rng = random.Random(seed)
    g = sample_genotype(rng)
    m = revalidate(mutate(g, rng, 1.0))
    for old, new in zip(g.nodes(), m.nodes()):
        assert changed_edges(old, new) == 1
        assert new[0][1] < new[1][1]  # canonical: two distinct inputs, smaller first


@given(seeds)
def test_mutation_with_p_m_zero_changes_nothing(seed):
    rng = random.Random(seed)
    g = sample_genotype(rng)
    assert mutate(g, rng, 0.0).key() == g.key()


@given(seeds, probs)
def test_mutation_is_valid_and_changes_at_most_one_edge_per_node(seed, p_m):
    rng = random.Random(seed)
    g = sample_genotype(rng)
    m = revalidate(mutate(g, rng, p_m))
    assert all(changed_edges(old, new) <= 1 for old, new in zip(g.nodes(), m.nodes()))


def test_mutation_reaches_op_input_and_both_changes_and_keeps_inputs_in_range():
    g = FIXTURES["DARTS_V2"]
    rng = random.Random(0)
    kinds: Counter[tuple[int, str]] = Counter()
    for _ in range(3000):
        m = mutate(g, rng, 1.0)
        for k, (old, new) in enumerate(zip(g.nodes(), m.nodes())):
            j = k % NODES
            assert all(0 <= inp <= j + 1 for _, inp in new)
            (gone,) = set(old) - set(new)
            (came,) = set(new) - set(old)
            kind = "op" if gone[1] == came[1] else ("input" if gone[0] == came[0] else "both")
            kinds[(j, kind)] += 1
    # node 0 has only inputs {0, 1}: its edges can only change op
    assert kinds[(0, "input")] == kinds[(0, "both")] == 0
    for j in range(1, NODES):
        assert kinds[(j, "op")] > 0 and kinds[(j, "input")] > 0 and kinds[(j, "both")] > 0


def test_mutation_rate_is_per_node():
    g = FIXTURES["PDARTS"]
    rng = random.Random(5)
    trials = 1000
    changed = sum(a != b for _ in range(trials) for a, b in zip(g.nodes(), mutate(g, rng, 0.25).nodes()))
    assert abs(changed / (trials * 2 * NODES) - 0.25) < 0.02


# --- selection --------------------------------------------------------------------------------------------


@given(seeds, st.floats(0, 1), st.floats(0, 1))
def test_tournament_of_two_returns_the_fitter(seed, f0, f1):
    idx = binary_tournament([f0, f1], random.Random(seed))
    assert [f0, f1][idx] == max(f0, f1)


@given(seeds)
def test_tournament_ties_go_to_fewer_params(seed):
    rng = random.Random(seed)
    assert binary_tournament([0.5, 0.5], rng, params=[200, 100]) == 1
    assert binary_tournament([0.5, 0.5], rng, params=[100, 200]) == 0
    assert binary_tournament([0.4, 0.5], rng, params=[100, 200]) == 1  # fitness first


def test_tournament_full_tie_picks_either_and_nan_loses():
    rng = random.Random(0)
    picks = Counter(binary_tournament([0.5, 0.5], rng, params=[7, 7]) for _ in range(400))
    assert picks[0] > 100 and picks[1] > 100
    assert all(binary_tournament([math.nan, 0.1], rng) == 1 for _ in range(20))
    assert binary_tournament([0.3], rng) == 0


@given(seeds, st.lists(st.floats(0, 1), min_size=3, max_size=20, unique=True))
def test_tournament_never_picks_the_worst_and_beats_the_other_draw(seed, fitness):
    idx = binary_tournament(fitness, random.Random(seed))
    assert fitness[idx] != min(fitness)


def test_tournament_picks_the_best_about_twice_as_often_as_uniform():
    fitness = [0.1 * i for i in range(10)]
    rng = random.Random(2)
    trials = 5000
    best = sum(binary_tournament(fitness, rng) == 9 for _ in range(trials))
    assert abs(best / trials - 0.2) < 0.03  # best wins whenever drawn: 2/n


def test_environmental_selection_examples():
    fitness = [0.5, 0.9, 0.7, 0.9, 0.7, 0.1]
    params = [10, 30, 20, 20, 20, 1]
    assert environmental_selection(fitness, params, 4) == [3, 1, 2, 4]
    assert environmental_selection(fitness, params, 0) == []
    assert environmental_selection([math.nan, 0.2], [1, 1], 1) == [1]
    with pytest.raises(ValueError):
        environmental_selection(fitness, params, 7)
    with pytest.raises(ValueError):
        environmental_selection(fitness, params[:-1], 2)


@given(
    st.lists(st.tuples(st.sampled_from([0.1, 0.2, 0.3, 0.4]), st.integers(1, 4)), min_size=1, max_size=30),
    st.data(),
)
def test_environmental_selection_keeps_the_best(individuals, data):
    fitness = [f for f, _ in individuals]
    params = [p for _, p in individuals]
    n = data.draw(st.integers(0, len(individuals)))
    kept = environmental_selection(fitness, params, n)
    assert len(kept) == n == len(set(kept))
    rank = [(-fitness[i], params[i], i) for i in range(len(fitness))]
    assert [rank[i] for i in kept] == sorted(rank)[:n]


def test_environmental_selection_with_a_generator_breaks_ties_at_random_by_the_seed():
    fitness = [0.9, 0.5, 0.5, 0.5, 0.5, 0.1]
    params = [50, 40, 30, 20, 10, 1]
    survivors = Counter()
    for seed in range(400):
        kept = environmental_selection(fitness, params, 3, random.Random(seed))
        assert kept == environmental_selection(fitness, params, 3, random.Random(seed))  # by the seed
        assert kept[0] == 0 and set(kept[1:]) <= {1, 2, 3, 4}  # fitness first, always
        survivors.update(kept[1:])
    # each of the four tied individuals survives about half the time, whatever its size or position
    assert all(abs(survivors[i] / 400 - 0.5) < 0.1 for i in (1, 2, 3, 4)), survivors
    assert environmental_selection(fitness, params, 3) == [0, 4, 3]  # without a generator: fewer params


# --- offspring and populations ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)  # a loaded shared machine can stall any example
@given(seeds, probs, probs)
def test_make_offspring_is_new_distinct_valid_and_reproducible(seed, p_c, p_m):
    rng = random.Random(seed)
    parents = [sample_genotype(rng) for _ in range(6)]
    fitness = [rng.random() for _ in parents]
    seen = {p.key() for p in parents} | {sample_genotype(rng).key() for _ in range(5)}
    before = set(seen)
    kids = make_offspring(parents, fitness, random.Random(seed), n=8, p_c=p_c, p_m=p_m, seen=seen, max_tries=50)
    assert len(kids) == 8
    keys = [revalidate(k).key() for k in kids]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & seen
    assert seen == before  # the caller's set is not modified
    again = make_offspring(parents, fitness, random.Random(seed), n=8, p_c=p_c, p_m=p_m, seen=seen, max_tries=50)
    assert [k.key() for k in again] == keys


def test_make_offspring_without_mutation_only_recombines_parent_nodes():
    a, b = pair_of_genotypes(7)
    seen = {a.key(), b.key()}
    # equal fitness, so each tournament's winner is random (the first drawn) and both parents get picked
    kids = make_offspring([a, b], [0.5, 0.5], random.Random(8), n=20, p_c=1.0, p_m=0.0, seen=seen)
    assert len({k.key() for k in kids}) == 20
    for kid in kids:
        assert kid.key() not in seen
        assert all(nk in (na, nb) for nk, na, nb in zip(kid.nodes(), a.nodes(), b.nodes()))


def test_make_offspring_falls_back_to_fresh_random_genotypes():
    g = FIXTURES["DARTS_V2"]
    seen = {g.key()}
    # one parent, no variation: every draw is a copy of g, which is seen, so every child is a fallback
    kids = make_offspring([g], [0.9], random.Random(0), n=5, p_c=0.5, p_m=0.0, seen=seen, max_tries=3)
    keys = {k.key() for k in kids}
    assert len(keys) == 5 and g.key() not in keys


def test_make_offspring_selection_prefers_the_fitter_parent():
    a, b = pair_of_genotypes(13)
    # two parents: every tournament draws both and returns a, so every child is a mutated copy of a
    kids = make_offspring([a, b], [0.9, 0.1], random.Random(0), n=5, p_c=1.0, p_m=1.0, seen={a.key()})
    for kid in kids:
        assert all(changed_edges(nk, na) == 1 for nk, na in zip(kid.nodes(), a.nodes()))


def test_make_offspring_uses_params_and_rejects_bad_lengths():
    a, b = pair_of_genotypes(9)
    kids = make_offspring([a, b], [0.5, 0.5], random.Random(0), n=3, p_c=0.0, p_m=1.0, seen=set(), params=[1, 2])
    assert len(kids) == 3
    with pytest.raises(ValueError):
        make_offspring([a, b], [0.5], random.Random(0), n=1, p_c=0.5, p_m=0.5, seen=set())
    with pytest.raises(ValueError):
        make_offspring([], [], random.Random(0), n=1, p_c=0.5, p_m=0.5, seen=set())


@settings(deadline=None)
@given(seeds, st.integers(0, 30))
def test_random_population_is_distinct_unseen_and_reproducible(seed, n):
    seen = {sample_genotype(random.Random(seed)).key()}  # the first draw of the same seed is already seen
    pop = random_population(n, random.Random(seed), seen)
    keys = [revalidate(g).key() for g in pop]
    assert len(keys) == n == len(set(keys))
    assert not set(keys) & seen
    assert len(seen) == 1
    assert [g.key() for g in random_population(n, random.Random(seed), seen)] == keys


# --- path sampling ----------------------------------------------------------------------------------------


@given(seeds)
def test_region_of_one_genotype_always_samples_it(seed):
    g = sample_genotype(random.Random(seed))
    region = region_frequencies([g])
    rng = random.Random(seed + 1)
    assert all(sample_from_region(region, rng).key() == g.key() for _ in range(10))


@given(seeds)
def test_region_of_two_samples_genes_of_the_two(seed):
    rng = random.Random(seed)
    a, b = sample_genotype(rng), sample_genotype(rng)
    region = region_frequencies([a, b])
    for _ in range(10):
        s = revalidate(sample_from_region(region, rng))
        for ns, na, nb in zip(s.nodes(), a.nodes(), b.nodes()):
            assert (ns[0][1], ns[1][1]) in {(na[0][1], na[1][1]), (nb[0][1], nb[1][1])}
            for edge in ns:
                assert edge in set(na) | set(nb)


@settings(max_examples=30)
@given(seeds, st.integers(1, 12))
def test_region_sampling_is_always_valid(seed, size):
    rng = random.Random(seed)
    region = region_frequencies([sample_genotype(rng) for _ in range(size)])
    for _ in range(10):
        revalidate(sample_from_region(region, rng))


def test_region_sampling_follows_the_region_frequencies():
    a, b = pair_of_genotypes(11)
    region = region_frequencies([a, a, a, b])
    rng = random.Random(12)
    trials = 4000
    node_hits = Counter()
    op_hits = Counter()
    for _ in range(trials):
        s = sample_from_region(region, rng)
        for k, (ns, na) in enumerate(zip(s.nodes(), a.nodes())):
            node_hits[k] += (ns[0][1], ns[1][1]) == (na[0][1], na[1][1])
            op_hits[k] += ns[0][0] == na[0][0]
    for k in range(2 * NODES):
        same_pair = (a.nodes()[k][0][1], a.nodes()[k][1][1]) == (b.nodes()[k][0][1], b.nodes()[k][1][1])
        assert abs(node_hits[k] / trials - (1.0 if same_pair else 0.75)) < 0.03
    # gene-level: over many draws, each op's share on each (node, input) edge matches the region's
    counts = Counter()
    for _ in range(trials):
        for k, node in enumerate(sample_from_region(region, rng).nodes()):
            for op, inp in node:
                counts[(k, inp, op)] += 1
    for k in range(2 * NODES):
        for inp, ops in region.ops[k].items():
            total = sum(counts[(k, inp, op)] for op in CANDIDATE_OPS)
            for op, c in ops.items():
                assert abs(counts[(k, inp, op)] / total - c / sum(ops.values())) < 0.05


def test_region_needs_a_genotype():
    with pytest.raises(ValueError):
        region_frequencies([])


@given(seeds, st.integers(1, 12), st.integers(0, 60))
def test_balanced_rounds_gives_equal_counts(seed, m, steps):
    members = [f"p{i}" for i in range(m)]
    out = balanced_rounds(members, steps, random.Random(seed))
    assert len(out) == steps
    counts = Counter(out)
    assert set(counts) <= set(members)
    low = steps // m
    assert all(counts[x] in (low, low + 1) for x in members)
    if steps % m == 0:
        assert all(counts[x] == low for x in members)
    for r in range(steps // m):  # every full round is a permutation of the members
        assert sorted(out[r * m : (r + 1) * m]) == sorted(members)
    assert balanced_rounds(members, steps, random.Random(seed)) == out
    assert members == [f"p{i}" for i in range(m)]  # input untouched


def test_balanced_rounds_shuffles_and_rejects_bad_input():
    members = list(range(10))
    orders = {tuple(balanced_rounds(members, 10, random.Random(s))) for s in range(20)}
    assert len(orders) > 1
    assert balanced_rounds([], 0, random.Random(0)) == []
    with pytest.raises(ValueError):
        balanced_rounds([], 3, random.Random(0))
    with pytest.raises(ValueError):
        balanced_rounds(members, -1, random.Random(0))
