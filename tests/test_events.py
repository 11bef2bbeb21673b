"""runs.events: each kind of event, its events.jsonl line, reading lines back, the publisher and the train log."""

from __future__ import annotations

import json

import pytest

from nasviz.runs import events
from nasviz.runs.events import (
    Checkpoint,
    Done,
    Evaluation,
    Generation,
    NewBest,
    Phase,
    Publisher,
    Resumed,
    TrainLog,
    TrainStep,
    from_json,
)

ROW = {"generation": 1, "supernet_steps": 30, "evaluations": 12, "wall_time_s": 1.5,
       "individuals": [{"genotype": "g", "role": "parent", "fitness": 0.5, "fitness_before": 0.4, "params": 7,
                        "selected": True, "evaluated_at_step": 30}],
       "population": ["g"], "fitness": [0.5], "params": [7], "best": {"genotype": "g", "fitness": 0.5},
       "mean_fitness": 0.5, "trained_paths": ["p", "q"], "train_loss": [1.0, 0.9], "train_accuracy": [0.1, 0.2],
       "diagnostic_evaluations": 3}

EXAMPLES = [
    Phase("warmup", 0, steps=20, done=10),
    Phase("generation", 2),
    TrainStep("finetune", 1, 3, 6, 1.25, 0.5, "g"),
    Evaluation(1, "g", 0.75, 1234, "offspring", "before", 26),
    Generation.from_row(ROW),
    NewBest(1, "g", 0.75),
    Checkpoint(-1, 10),
    Resumed(1, 20),
    Done({"finished": True, "best_genotype": "g", "best_fitness": 0.75}),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_every_event_round_trips_through_its_json_line(event):
    line = json.loads(json.dumps(event.to_json()))
    assert line["type"] == event.kind
    assert from_json(line) == event
    assert isinstance(from_json(line), type(event))


def test_the_lines_are_those_events_jsonl_has_always_held():
    assert Phase("warmup", 0, steps=20, done=10).to_json() == {"type": "phase", "phase": "warmup", "generation": 0,
                                                                 "steps": 20, "done": 10}
    assert Phase("initial", 0).to_json() == {"type": "phase", "phase": "initial", "generation": 0}
    assert list(TrainStep("warmup", 0, 1, 2, 0.5, 0.25, "g").to_json()) == [
        "type", "phase", "generation", "step", "of", "loss", "accuracy", "genotype"]
    assert Done({"finished": True}).to_json() == {"type": "done", "finished": True}
    # a generation's line is its history row without the trained paths, in the row's order
    line = Generation.from_row(ROW).to_json()
    assert list(line) == ["type"] + [k for k in ROW if k != "trained_paths"]
    assert Generation.from_row(ROW).row() == {k: v for k, v in ROW.items() if k != "trained_paths"}


def test_from_json_ignores_unknown_fields_and_refuses_unknown_kinds():
    assert from_json({"type": "new_best", "generation": 1, "genotype": "g", "fitness": 0.5, "extra": 1}) == \
        NewBest(1, "g", 0.5)
    with pytest.raises(KeyError):
        from_json({"type": "no-such-kind"})
    assert set(events.KINDS) == {e.kind for e in EXAMPLES}


def test_publisher_delivers_in_order_until_unsubscribed():
    bus, first, second = Publisher(), [], []
    stop_first = bus.subscribe(first.append)
    bus.subscribe(second.append)
    bus.emit(EXAMPLES[0])
    stop_first()
    bus.emit(EXAMPLES[1])
    assert first == [EXAMPLES[0]] and second == EXAMPLES[:2]


def test_train_log_collects_train_steps_and_round_trips_its_state():
    log = TrainLog()
    for k in range(3):
        log.add(TrainStep("finetune", 1, k, 3, 1.0 - k / 10, k / 10, f"g{k}"))
    assert len(log) == 3 and log.paths == ["g0", "g1", "g2"] and log.loss == [1.0, 0.9, 0.8]
    assert TrainLog.from_state(json.loads(json.dumps(log.state()))) == log
