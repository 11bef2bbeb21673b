"""nasviz.search.population: individuals keep their genotype and what was measured together through selection."""

from __future__ import annotations

import random

from nasviz.search.ga import environmental_selection
from nasviz.search.population import Individual, Population
from nasviz.space.genotypes import sample_genotype


def population(fitness: list[float], params: list[int]) -> Population:
    rng = random.Random(0)
    return Population(Individual(sample_genotype(rng), p, "offspring", fitness=f, evaluated_at=5)
                      for f, p in zip(fitness, params))


def test_select_keeps_records_together_best_first_ties_by_fewer_params():
    region = population([0.5, 0.9, 0.9, 0.1, float("nan")], [10, 30, 20, 5, 1])
    survivors = region.select(3)
    assert [i.fitness for i in survivors] == [0.9, 0.9, 0.5]
    assert [i.params for i in survivors] == [20, 30, 10]  # the tie: fewer parameters first
    assert [region.members.index(i) for i in survivors] == environmental_selection(region.fitness, region.params, 3)
    assert [i.selected for i in region] == [True, True, True, False, False]
    for individual in survivors:  # the same records, not copies: genotype and measurements stay paired
        assert any(individual is member for member in region)


def test_as_parent_makes_the_old_fitness_the_before_and_leaves_the_record_alone():
    child = population([0.7], [3])[0]
    child.selected = True
    parent = child.as_parent()
    assert (parent.role, parent.fitness_before, parent.fitness, parent.selected) == ("parent", 0.7, 0.7, False)
    assert (child.role, child.fitness_before, child.selected) == ("offspring", None, True)
    assert parent.genotype is child.genotype and parent.evaluated_at == child.evaluated_at


def test_history_line_and_checkpoint_state():
    region = population([0.4, 0.6], [8, 9])
    survivors = region.select(2)
    assert list(survivors[0].to_json()) == ["genotype", "role", "fitness", "fitness_before", "params", "selected",
                                            "evaluated_at_step"]
    assert survivors[0].to_json()["genotype"] == str(survivors[0].genotype)
    state = survivors.state()
    assert state["fitness"] == [0.6, 0.4] and state["params"] == [9, 8] and state["fitness_at"] == [5, 5]
    again = Population.from_state(state)
    assert again.genotypes == survivors.genotypes and again.fitness == survivors.fitness
    assert (again + region).genotypes == survivors.genotypes + region.genotypes  # P ∪ Q, in that order


def test_pareto_selection_keeps_nsga2_survivors_listed_best_first():
    from nasviz.search.ga import pareto_selection

    fitness, params = [0.9, 0.8, 0.85, 0.7, 0.9, 0.6], [300, 100, 200, 150, 400, 50]
    region = population(fitness, params)
    survivors = region.select(4, pareto=True)
    assert {region.members.index(i) for i in survivors} == set(pareto_selection(fitness, params, 4))
    assert [i.fitness for i in survivors] == sorted((i.fitness for i in survivors), reverse=True)
    # front 0 is {0, 1, 2, 5}: the smallest (5) survives on its size; 4 (as fit as 0, but larger) does not
    assert [region.members.index(i) for i in survivors] == [0, 2, 1, 5]
    plain = population(fitness, params)
    assert [plain.members.index(i) for i in plain.select(4)] == [0, 4, 2, 1]
