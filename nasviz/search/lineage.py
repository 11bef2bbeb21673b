"""Recording lineage while searching (`nasviz.runs.lineage` says what is recorded and reads it back).

`name_newcomers` gives each new genotype of a generation its id and lineage; `record_fitness` appends every
measurement to its fitness story.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nasviz.runs.lineage import individual_id
from nasviz.search.ga import Child, Mutation
from nasviz.space.genotypes import SearchSpace

if TYPE_CHECKING:
    from nasviz.search.population import Individual, Population


def name_newcomers(newcomers: Population, generation: int, space: SearchSpace,
                   children: Sequence[Child] | None = None, parents: Population | None = None) -> None:
    """Give the newcomers of `generation` their ids and lineage: 'initial' without `children`, else each child's
    provenance (`ga.breed`, indices into `parents`) with the parents' ids."""
    for index, member in enumerate(newcomers):
        member.id = individual_id(generation, index)
        if children is None:
            member.lineage = {"born": generation, "operator": "initial", "parents": [], "changes": None}
            continue
        how = children[index].provenance
        ids = [parents[i].id for i in how.parents] if parents is not None else [None] * len(how.parents)
        changes: dict[str, Any] = {}
        if how.genes_from is not None:
            changes["genes_from"] = [parents[i].id if parents is not None else None for i in how.genes_from]
        if how.mutations:
            changes["mutations"] = [mutation_json(m, space) for m in how.mutations]
        member.lineage = {"born": generation, "operator": how.operator, "parents": ids, "changes": changes or None}


def mutation_json(mutation: Mutation, space: SearchSpace) -> dict[str, Any]:
    """A mutation as a history row lists it: gene, cell ('normal', 'reduce'; 'both' in a tied space), node (its
    position in the cell, 0-based), the old and the new edge as [op, input]."""
    cell = "both" if space.tied else ("normal" if mutation.gene < space.nodes else "reduce")
    return {"gene": mutation.gene, "cell": cell, "node": space.node_position(mutation.gene),
            "old": list(mutation.old), "new": list(mutation.new)}


def record_fitness(individual: Individual, generation: int, step: int, fitness: float, stage: str) -> None:
    """Add one measurement to the individual's fitness story."""
    individual.story.append({"generation": generation, "step": step, "fitness": fitness, "stage": stage})


