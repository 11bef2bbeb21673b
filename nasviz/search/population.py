"""Individuals and populations of a search: each record keeps a genotype together with what the search learned
about it, so that selection can never pull a fitness value apart from its genotype."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from nasviz.runs.history_row import IndividualRow
from nasviz.search import ga
from nasviz.space.genotypes import Genotype


@dataclass
class Individual:
    """One genotype of a generation: its fitness, its fitness before this generation's fine-tuning, its
    parameter count (the tie-breaker), its role, whether it survived selection, and the supernet step (the
    version of the weights) its fitness was measured at."""

    genotype: Genotype
    params: int
    role: str
    fitness: float = float("nan")
    fitness_before: float | None = None
    selected: bool = False
    evaluated_at: int = -1
    truth: dict[str, Any] | None = None
    """Ground truth from a table (accuracy, percentile) where the space has one; never used for selection."""
    flops: int | None = None
    """FLOPs per image of its search-width network (None where not counted, e.g. read back from a checkpoint)."""
    latency_ms: float | None = None
    """Its search-width network's latency predicted by the search's latency profile (None without one)."""
    id: str | None = None
    """Its identity for the whole run, 'g<generation born>-<index among that generation's newcomers>' (None: not
    known, e.g. a member of a checkpoint written before lineage was recorded). See `nasviz.runs.lineage`."""
    lineage: dict[str, Any] = field(default_factory=dict)
    """Where it came from (`nasviz.runs.lineage`): born, operator, parents (ids), changes; empty where unknown."""
    story: list[dict[str, Any]] = field(default_factory=list)
    """Every fitness measured for it, in order: generation, supernet step, fitness, stage ('after'; 'before': the
    diagnostic measurement before a generation's fine-tuning)."""

    def as_parent(self) -> Individual:
        """This individual entering the next generation as a parent: its fitness so far is its 'before'."""
        return dataclasses.replace(self, role="parent", fitness_before=self.fitness, selected=False,
                                   story=list(self.story))

    def to_json(self) -> IndividualRow:
        """As a history.jsonl row lists it (`nasviz.runs.history_row.IndividualRow`; with its lineage where known)."""
        row: IndividualRow = {
            "genotype": str(self.genotype), "role": self.role, "fitness": self.fitness,
            "fitness_before": self.fitness_before, "params": self.params,
            **({} if self.flops is None else {"flops": self.flops}),
            **({} if self.latency_ms is None else {"latency_ms": self.latency_ms}), "selected": self.selected,
            "evaluated_at_step": self.evaluated_at}
        if self.id is not None:
            row |= {"id": self.id, **self.lineage, "story": [dict(e) for e in self.story]}
        return row if self.truth is None else {**row, "truth": self.truth}

    def lineage_state(self) -> dict[str, Any]:
        """Its identity, lineage and fitness story, as a checkpoint holds them."""
        return {"id": self.id, **self.lineage, "story": [dict(e) for e in self.story]}


class Population:
    """An ordered group of individuals; after `select` the survivors, best first."""

    def __init__(self, members: Iterable[Individual] = ()) -> None:
        self.members = list(members)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, index: int) -> Individual:
        return self.members[index]

    def __add__(self, other: Population) -> Population:
        """The union P ∪ Q, in that order."""
        return Population(self.members + other.members)

    @property
    def genotypes(self) -> list[Genotype]:
        return [m.genotype for m in self.members]

    @property
    def fitness(self) -> list[float]:
        return [m.fitness for m in self.members]

    @property
    def params(self) -> list[int]:
        return [m.params for m in self.members]

    @property
    def latency(self) -> list[float]:
        """Predicted latencies (ms); an individual without one counts as infinitely slow."""
        return [float("inf") if m.latency_ms is None else m.latency_ms for m in self.members]

    def select(self, n: int, pareto: bool = False, rng: random.Random | None = None,
               size: str = "params") -> Population:
        """Environmental selection: mark the best `n` (ties: fewer parameters, then order; with `rng`, a random order
        drawn from it) as selected and return them, best first. With `pareto`, the `n` kept are NSGA-II's
        (`ga.pareto_selection` on fitness up, `size` down: "params" or "latency"), still returned best first (ties
        ordered as above)."""
        if pareto:
            kept = set(ga.pareto_selection(self.fitness, self.latency if size == "latency" else self.params, n))
            order = [i for i in ga.environmental_selection(self.fitness, self.params, len(self), rng) if i in kept]
        else:
            order = ga.environmental_selection(self.fitness, self.params, n, rng)
        for i in order:
            self.members[i].selected = True
        return Population(self.members[i] for i in order)

    def state(self) -> dict[str, list]:
        """As a checkpoint holds it: parallel lists population, fitness, params, fitness_at, lineage."""
        return {"population": [str(g) for g in self.genotypes], "fitness": self.fitness, "params": self.params,
                "fitness_at": [m.evaluated_at for m in self.members],
                "lineage": [m.lineage_state() for m in self.members]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Population:
        """The population a checkpoint holds (its members, selected, best first); a checkpoint without lineage
        (written before it was recorded) gives members of unknown identity."""
        rows = zip(state["population"], state["fitness"], state["params"], state["fitness_at"], strict=True)
        members = [Individual(Genotype.parse(text), params, "parent", fitness, selected=True, evaluated_at=at)
                   for text, fitness, params, at in rows]
        for member, saved in zip(members, state.get("lineage") or (), strict=False):
            saved = dict(saved)
            member.id, member.story = saved.pop("id", None), list(saved.pop("story", ()))
            member.lineage = saved if member.id is not None else {}
        return cls(members)
