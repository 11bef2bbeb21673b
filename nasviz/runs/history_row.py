"""One history.jsonl row, defined once: `HistoryRow` (a generation of a search) and the types of its parts.

The search builds the rows (`nasviz.search.search_records.history_row`, each individual by `Individual.to_json`);
the readers check them against these types (`row_problem`, which `rundir.load_history(check=True)` uses), so a
field added here is both documented and validated. A field in a `total=False` class may be absent: runs recorded
before it existed (lineage: `id`, `born`, `operator`, `parents`, `changes`, `story`; `population_ids`, ...) still
load; where present, it must have its type. JSON numbers: a float field accepts an int; an int field never a bool.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, TypedDict, Union, get_args, get_origin, get_type_hints

from nasviz.errors import one_line


class StoryEntry(TypedDict):
    """One fitness measured for an individual (`nasviz.runs.lineage`): the generation, the supernet step (the
    weights' version), the fitness and the stage ('after'; 'before': before the generation's fine-tuning)."""

    generation: int
    step: int
    fitness: float
    stage: str


class _Individual(TypedDict):
    genotype: str
    role: str
    """'initial', 'parent' or 'offspring'."""
    fitness: float
    fitness_before: float | None
    params: int
    selected: bool


class IndividualRow(_Individual, total=False):
    """An individual of a generation's region (P ∪ Q), with its lineage where recorded (`nasviz.runs.lineage`)."""

    flops: int
    latency_ms: float
    evaluated_at_step: int
    id: str
    born: int
    operator: str
    parents: list[str | None]
    changes: dict[str, Any] | None
    story: list[StoryEntry]
    truth: dict[str, Any]


class _Best(TypedDict):
    genotype: str
    fitness: float


class BestRow(_Best, total=False):
    """The best of the surviving population."""

    id: str | None
    truth: dict[str, Any]


class _Row(TypedDict):
    generation: int
    supernet_steps: int
    evaluations: int
    individuals: list[IndividualRow]
    population: list[str]
    fitness: list[float]
    params: list[int]
    best: BestRow
    mean_fitness: float
    trained_paths: list[str]
    train_loss: list[float]
    train_accuracy: list[float]


class HistoryRow(_Row, total=False):
    """A generation's history.jsonl row: every individual of the region, the surviving population (best first)
    with its fitness, parameters and ids, the best, the mean fitness, the paths trained (with their loss and
    accuracy) and the counters (supernet steps, the search's own evaluations and, apart, the diagnostic ones)."""

    diagnostic_evaluations: int
    wall_time_s: float
    population_ids: list[str | None]


@cache
def fields(kind: type) -> dict[str, Any]:
    """The fields of the TypedDict `kind` and their types, in order."""
    return get_type_hints(kind)


def conforms(value: Any, kind: Any) -> bool:
    """Whether the JSON `value` has the type `kind` (int, float, str, bool, None, unions, list[X], dict[str, X],
    the TypedDicts above, Any)."""
    origin = get_origin(kind)
    if kind is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(conforms(value, k) for k in get_args(kind))
    if kind is type(None):
        return value is None
    if kind in (int, float):
        return isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, get_args(kind)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(v, get_args(kind)[1]) for v in value.values())
    if typing.is_typeddict(kind):
        return isinstance(value, dict) and _missing_or_wrong(value, kind) is None
    return isinstance(value, kind)


def _container(kind: Any) -> Any:
    """The outer type of `kind`: list or dict for a list, dict or TypedDict; `kind` itself otherwise."""
    return list if get_origin(kind) is list else dict if get_origin(kind) is dict or typing.is_typeddict(kind) \
        else kind


def _missing_or_wrong(obj: dict, kind: type) -> str | None:
    """The first field of the TypedDict `kind` that `obj` lacks (a required one) or holds with another type."""
    for name, field in fields(kind).items():
        if (name not in obj and name in kind.__required_keys__) or (name in obj and not conforms(obj[name], field)):
            return name
    return None


def row_problem(row: Any) -> str | None:
    """What is wrong with a history row (None: nothing): not an object, a field of `HistoryRow` missing or of the
    wrong type (the field itself first, then what it holds)."""
    if not isinstance(row, dict):
        return f"is {type(row).__name__}, not an object"
    present = {name: kind for name, kind in fields(HistoryRow).items() if name in row}
    for name in fields(HistoryRow):
        if name not in row and name in HistoryRow.__required_keys__:
            return f"lacks {name!r}"
        if name in present and not conforms(row[name], _container(present[name])):
            return f"has {name}={one_line(repr(row[name]), 40)}"
    for name, kind in present.items():
        if typing.is_typeddict(kind) and (field := _missing_or_wrong(row[name], kind)) is not None:
            return f"has {name}={one_line(repr(row[name]), 60)}, without a {field}"
        element = get_args(kind)[0] if get_origin(kind) is list else None
        bad = next((k for k, v in enumerate(row[name]) if not conforms(v, element)), None) if element else None
        if bad is not None and typing.is_typeddict(element):
            return (f"has {name.removesuffix('s')} {bad} = {one_line(repr(row[name][bad]), 60)}, which lacks a field "
                    "or has a wrong type")
        if bad is not None:
            return f"has {one_line(repr(row[name][bad]), 40)} in {name}"
    return None
