"""The search's ledger: every genotype it meets and every fitness it measures (scored by its `Evaluator`).

A newcomer (the initial population, a generation's offspring) is marked seen (the GA never draws it again), gets
its sizes and, where the space has a ground-truth table, its truth, and its id and lineage (`nasviz.search.lineage`).
Every measurement counts (the search's own evaluations, or a diagnostic one: the fitness before fine-tuning), is
appended to the individual's fitness story and emitted as an `Evaluation` event; a fitness the search selects by
also becomes the genotype's latest (the final pick's candidates come from there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from nasviz.runs import events
from nasviz.search import lineage
from nasviz.search.evaluators import Evaluator, score_all
from nasviz.search.population import Individual, Population
from nasviz.space.genotypes import Genotype, SearchSpace

if TYPE_CHECKING:
    from nasviz.search.budget import Sizes
    from nasviz.search.checkpoint import SearchState
    from nasviz.search.ga import Child
    from nasviz.table import Table
    from nasviz.train.distributed import Ranks


class Ledger:
    """The bookkeeping of one search: its `state`'s counters and genotypes, in `space`, scored by `evaluator` on
    `ranks`, judged by `truth` (None: no table); `emit` publishes the events."""

    def __init__(self, state: SearchState, space: SearchSpace, evaluator: Evaluator, ranks: Ranks,
                 truth: Table | None, emit: Callable[[events.Event], None]) -> None:
        self.state, self.space, self.evaluator, self.ranks, self.truth, self.emit = \
            state, space, evaluator, ranks, truth, emit
        self.sizes: Sizes = evaluator.sizes

    def newcomers(self, genotypes: Sequence[Genotype], role: str, generation: int,
                  children: Sequence[Child] | None = None, parents: Population | None = None) -> Population:
        """The individuals of genotypes new to the search ('initial' or 'offspring' of `generation`), marked seen,
        with their sizes, truth, ids and lineage (`children`: how each offspring was made from `parents`)."""
        self.state.seen.update(self.space.key(g) for g in genotypes)
        newcomers = Population(self.individual(g, role) for g in genotypes)
        lineage.name_newcomers(newcomers, generation, self.space, children, parents)
        return newcomers

    def individual(self, genotype: Genotype, role: str) -> Individual:
        size = self.sizes(genotype)
        return Individual(genotype, size.params, role, truth=self._truth(genotype), flops=size.flops,
                          latency_ms=size.latency_ms)

    def refresh(self, individuals: Iterable[Individual]) -> None:
        """Give individuals read back from a checkpoint what it does not hold: truth, FLOPs and latency."""
        for individual in individuals:
            individual.truth = self._truth(individual.genotype)
            individual.flops = self.sizes(individual.genotype).flops
            individual.latency_ms = self.sizes(individual.genotype).latency_ms

    def _truth(self, genotype: Genotype) -> dict | None:
        return self.truth.summary(genotype) if self.truth is not None else None

    def measure(self, individuals: Sequence[Individual], generation: int, stage: str) -> list[float]:
        """The fitness of each of `individuals` with the current weights, in order, each recorded (`measured`)."""
        values = score_all(self.evaluator, self.ranks, [i.genotype for i in individuals])
        return [self.measured(i, v, generation, stage) for i, v in zip(individuals, values, strict=True)]

    def evaluate(self, individuals: Sequence[Individual], generation: int) -> None:
        """Measure the fitness the search selects by of `individuals`, with the current weights."""
        for individual, value in zip(individuals, self.measure(individuals, generation, "after"), strict=True):
            self.evaluated(individual, value)

    def measured(self, individual: Individual, value: float, generation: int, stage: str) -> float:
        """Record one measurement of `individual` (`stage` 'before': a diagnostic the search never selects by;
        'after': the fitness it selects by); returns `value`."""
        if stage == "before":
            self.state.diagnostic_evaluations += 1
        else:
            self.state.evaluations += 1
        lineage.record_fitness(individual, generation, self.state.steps, value, stage)
        self.emit(events.Evaluation(generation, str(individual.genotype), value, individual.params, individual.role,
                                    stage, self.state.steps))
        return value

    def evaluated(self, individual: Individual, value: float) -> None:
        """`individual`'s fitness is now `value`, measured with the current weights."""
        individual.fitness = value
        individual.evaluated_at = self.state.steps
        self.state.latest[self.space.key(individual.genotype)] = (str(individual.genotype), value)
