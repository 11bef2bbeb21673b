"""A run as far as it got: its history rows, plus the warm-up's steps when it stopped before generation 0.

A search stopped during its warm-up has no history row yet, but it has trained steps (the checkpoint holds their
loss, accuracy and paths). `rows_so_far` adds them as a partial generation-0 row that the training figures draw
(`training_curves_figure`, `op_frequency_figure`); the figures about populations need whole rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasviz.runs import rundir
from nasviz.viz.common import Row


def warmup_row(paths: list[str], loss: list[float], accuracy: list[float], steps: int) -> Row:
    """A partial generation-0 row holding only the warm-up's trained steps (`partial: True`)."""
    return {"generation": 0, "supernet_steps": steps, "trained_paths": list(paths), "train_loss": list(loss),
            "train_accuracy": list(accuracy), "partial": True}


def is_partial(rows: list[Row]) -> bool:
    """Whether `rows` is only a stopped warm-up (no population yet)."""
    return bool(rows) and bool(rows[-1].get("partial"))


def rows_so_far(source: Any) -> list[Row]:
    """The history rows of a `Search` (in memory) or of a run directory; where the run has no generation 0 yet,
    one partial warm-up row (`warmup_row`) with the steps trained so far, or no row if none was trained."""
    if hasattr(source, "warmup_log"):  # a Search
        rows = rundir.load_history(source.run_dir) if source.run_dir is not None else []
        log, generation, steps = source.warmup_log, source.generation, source.steps
        paths, loss, accuracy = log.paths, log.loss, log.accuracy
    else:
        run_dir = Path(source)
        rows = rundir.load_history(run_dir, check=True)
        if rows or not (run_dir / rundir.CHECKPOINT).is_file():
            return rows
        state = rundir.load_search_state(run_dir)
        generation, steps, log = state["generation"], state["steps"], state["warmup_log"]
        paths, loss, accuracy = log["paths"], log["loss"], log["accuracy"]
    if rows or generation >= 0 or not loss:
        return rows
    return [warmup_row(paths, loss, accuracy, steps)]
