"""What a search tells its subscribers, one small dataclass per kind of event.

    search.subscribe(lambda event: print(event) if isinstance(event, NewBest) else None)

Every event has a `kind` (the "type" written to events.jsonl) and `to_json()`, the line events.jsonl holds;
`from_json` turns such a line back into its event, so a recorded run replays exactly as a live one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class _Event:
    kind: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The event as events.jsonl holds it: {"type": kind, field: value, ...}."""
        return {"type": self.kind, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


@dataclass
class Phase(_Event):
    """The search enters a phase: 'warmup' (with the total and done `steps`), 'initial', 'generation', 'final' (the
    final pick's retraining, `steps` candidates), 'done'."""

    kind: ClassVar[str] = "phase"
    phase: str
    generation: int
    steps: int | None = None
    done: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_json().items() if v is not None or k not in ("steps", "done")}


@dataclass
class TrainStep(_Event):
    """One supernet training step on one path: `step` of `of` in this phase (warmup or finetune)."""

    kind: ClassVar[str] = "train_step"
    phase: str
    generation: int
    step: int
    of: int
    loss: float
    accuracy: float
    genotype: str


@dataclass
class Evaluation(_Event):
    """One fitness evaluation with the supernet's weights after `supernet_steps` steps; `stage` is 'before' or
    'after' this generation's fine-tuning."""

    kind: ClassVar[str] = "evaluation"
    generation: int
    genotype: str
    fitness: float
    params: int
    role: str
    stage: str
    supernet_steps: int


@dataclass
class Generation(_Event):
    """A generation ended: its history.jsonl row, without the trained paths (the train steps carried them)."""

    kind: ClassVar[str] = "generation"
    generation: int
    supernet_steps: int
    evaluations: int
    wall_time_s: float
    individuals: list[dict]
    population: list[str]
    fitness: list[float]
    params: list[int]
    best: dict
    mean_fitness: float
    train_loss: list[float]
    train_accuracy: list[float]
    diagnostic_evaluations: int = 0
    """Evaluations for the figures only (fitness before fine-tuning), apart from `evaluations`, the search's own."""
    population_ids: list[str | None] | None = None
    """The survivors' ids (`nasviz.runs.lineage`), best first; None in a run recorded before lineage."""

    def to_json(self) -> dict[str, Any]:
        line = super().to_json()
        return line if self.population_ids is not None else {k: v for k, v in line.items() if k != "population_ids"}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Generation:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def row(self) -> dict[str, Any]:
        """The history row (without `trained_paths`) as plain Python."""
        return {k: v for k, v in self.to_json().items() if k != "type"}


@dataclass
class NewBest(_Event):
    """The best genotype of the population changed."""

    kind: ClassVar[str] = "new_best"
    generation: int
    genotype: str
    fitness: float


@dataclass
class Checkpoint(_Event):
    """A checkpoint was written (generation -1: during the warm-up)."""

    kind: ClassVar[str] = "checkpoint"
    generation: int
    warmup_done: int
    run_id: str | None = None
    """The run's identity (as in checkpoint.pt and result.json): a resume checks the checkpoint against it."""


@dataclass
class Resumed(_Event):
    """The search continues from its checkpoint."""

    kind: ClassVar[str] = "resumed"
    generation: int
    warmup_done: int


@dataclass
class Done(_Event):
    """The search finished; `result` is result.json's content."""

    kind: ClassVar[str] = "done"
    result: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.kind, **self.result}


@dataclass
class Retrained(_Event):
    """The final pick retrained candidate `index` of `of` (`nasviz.search.final_pick`): its fitness in the search and
    its retrain scores (accuracy on held-out training images, one per seed)."""

    kind: ClassVar[str] = "retrained"
    genotype: str
    fitness: float
    scores: list[float]
    index: int
    of: int


Event = Phase | TrainStep | Evaluation | Generation | NewBest | Checkpoint | Resumed | Retrained | Done
"""Any event a search emits."""

KINDS: dict[str, type[_Event]] = {cls.kind: cls for cls in (Phase, TrainStep, Evaluation, Generation, NewBest,
                                                              Checkpoint, Resumed, Retrained, Done)}


def from_json(line: dict[str, Any]) -> Event:
    """The event an events.jsonl line holds (fields it does not know are ignored); KeyError for an unknown type."""
    cls = KINDS[line["type"]]
    values = {k: v for k, v in line.items() if k != "type"}
    if cls is Done:
        return Done(values)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class TrainLog:
    """The paths trained in a phase, with each step's loss and accuracy (a history row's `trained_paths`,
    `train_loss` and `train_accuracy`)."""

    paths: list[str] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def add(self, step: TrainStep) -> None:
        self.paths.append(step.genotype)
        self.loss.append(step.loss)
        self.accuracy.append(step.accuracy)

    def __len__(self) -> int:
        return len(self.paths)

    def state(self) -> dict[str, list]:
        """As a checkpoint holds it: {"paths", "loss", "accuracy"}."""
        return {"paths": list(self.paths), "loss": list(self.loss), "accuracy": list(self.accuracy)}

    @classmethod
    def from_state(cls, state: dict[str, list]) -> TrainLog:
        return cls(list(state["paths"]), list(state["loss"]), list(state["accuracy"]))


class Publisher:
    """Something that emits events to its subscribers (a search does)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener(event)` for every event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            listener(event)
