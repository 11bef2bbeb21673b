"""NSGA-II in nasviz.search.ga: non-dominated sorting, the 2-objective front sweep, crowding distance and environmental
selection on (fitness up, params down); a hand-checked example and property tests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasviz.search.ga import (
    crowding_distance,
    dominates,
    non_dominated_sort,
    pareto_front,
    pareto_selection,
    size_objectives,
)

# Hand-checked: (fitness, params) of eight individuals.
FITNESS = [0.90, 0.80, 0.85, 0.70, 0.90, 0.60, math.nan, 0.88]
PARAMS = [300, 100, 200, 150, 400, 500, 50, 250]
# 0, 1, 2, 7 trade accuracy for size: nobody beats them on both. 3 is beaten by 1 (0.80 > 0.70, 100 < 150),
# 4 by 0 (same fitness, fewer params); 5 by 3 and 4; 6 (NaN fitness) is worse than everyone, however small.
FRONTS = [[0, 1, 2, 7], [3, 4], [5], [6]]


def test_hand_checked_fronts():
    assert non_dominated_sort(size_objectives(FITNESS, PARAMS)) == FRONTS


def test_hand_checked_crowding_distance():
    points = size_objectives(FITNESS, PARAMS)
    distance = dict(zip(FRONTS[0], crowding_distance(points, FRONTS[0])))
    # fitness sorted: 1 (0.80), 2 (0.85), 7 (0.88), 0 (0.90), range 0.10; params: 100, 200, 250, 300, range 200
    assert distance[0] == math.inf and distance[1] == math.inf
    assert distance[2] == pytest.approx((0.88 - 0.80) / 0.10 + (250 - 100) / 200)  # 0.8 + 0.75
    assert distance[7] == pytest.approx((0.90 - 0.85) / 0.10 + (300 - 200) / 200)  # 0.5 + 0.5
    assert crowding_distance(points, FRONTS[1]) == [math.inf, math.inf]


def test_hand_checked_selection():
    # front 0 has four members; three fit: the two extremes (ties: higher fitness first), then the loneliest
    assert pareto_selection(FITNESS, PARAMS, 3) == [0, 1, 2]
    assert pareto_selection(FITNESS, PARAMS, 5) == [0, 1, 2, 7, 4]  # front 1: both extremes, 4 is fitter
    assert pareto_selection(FITNESS, PARAMS, 8) == [0, 1, 2, 7, 4, 3, 5, 6]
    assert pareto_selection(FITNESS, PARAMS, 0) == []


def test_dominates_and_bad_arguments():
    assert dominates((1, 1), (1, 0)) and not dominates((1, 1), (1, 1)) and not dominates((2, 0), (1, 1))
    with pytest.raises(ValueError, match="cannot keep 9 of 8"):
        pareto_selection(FITNESS, PARAMS, 9)
    with pytest.raises(ValueError, match="params has 2"):
        size_objectives([0.1], [1, 2])


# --- properties ---------------------------------------------------------------------------------------------
fitness_values = st.one_of(st.floats(min_value=0, max_value=1), st.just(math.nan),
                           st.sampled_from([0.25, 0.5, 0.75]))  # repeats, so ties happen
params_values = st.integers(min_value=1, max_value=6)  # few values: many ties
populations = st.integers(min_value=0, max_value=40).flatmap(
    lambda n: st.tuples(st.lists(fitness_values, min_size=n, max_size=n),
                        st.lists(params_values, min_size=n, max_size=n)))
relaxed = settings(deadline=None)  # pure and fast, but a loaded shared machine can stall any example


@relaxed
@given(populations)
def test_fronts_partition_the_population(population):
    fitness, params = population
    fronts = non_dominated_sort(size_objectives(fitness, params))
    members = [i for front in fronts for i in front]
    assert sorted(members) == list(range(len(fitness)))
    assert all(front for front in fronts) and all(front == sorted(front) for front in fronts)


@relaxed
@given(populations)
def test_front_members_are_non_dominated_and_each_later_one_is_dominated_from_the_front_before(population):
    points = size_objectives(*population)
    fronts = non_dominated_sort(points)
    for k, front in enumerate(fronts):
        rest = [j for later in fronts[k:] for j in later]
        for i in front:
            assert not any(dominates(points[j], points[i]) for j in rest)  # includes its own front
            if k:
                assert any(dominates(points[j], points[i]) for j in fronts[k - 1])


@relaxed
@given(populations)
def test_the_sweep_finds_the_first_front(population):
    points = size_objectives(*population)
    fronts = non_dominated_sort(points)
    assert pareto_front(points) == (fronts[0] if fronts else [])


@relaxed
@given(populations)
def test_crowding_distance_is_non_negative_with_infinite_extremes(population):
    points = size_objectives(*population)
    for front in non_dominated_sort(points):
        distance = crowding_distance(points, front)
        assert len(distance) == len(front) and all(d >= 0 for d in distance)
        for m in range(2):  # the extremes of each objective (ties: the higher index) are kept at any price
            low = min(range(len(front)), key=lambda k: (points[front[k]][m], k))
            high = max(range(len(front)), key=lambda k: (points[front[k]][m], k))
            assert distance[low] == distance[high] == math.inf
        # the same front given in another order gets the same distances
        reordered = dict(zip(front[::-1], crowding_distance(points, front[::-1])))
        assert reordered == dict(zip(front, distance))


@relaxed
@given(populations, st.data())
def test_selection_keeps_better_fronts_first(population, data):
    fitness, params = population
    n = data.draw(st.integers(min_value=0, max_value=len(fitness)))
    kept = pareto_selection(fitness, params, n)
    assert len(kept) == n == len(set(kept))
    rank = {i: k for k, front in enumerate(non_dominated_sort(size_objectives(fitness, params))) for i in front}
    left = set(range(len(fitness))) - set(kept)
    assert all(rank[i] <= rank[j] for i in kept for j in left)
    assert pareto_selection(fitness, params, n) == kept  # deterministic
