"""Learning-rate schedules of the training phases: the supernet's warm-up and fine-tuning rounds, and from-scratch
training (`nasviz.train.scratch`). A schedule here is a list of per-step rates, so a phase cut into chunks (the warm-up
between checkpoints) gets exactly the rates the whole phase would."""

from __future__ import annotations

import math


def cosine(base: float, position: int, total: int) -> float:
    """The rate at step `position` (0-based) of `total` steps, cosine-annealed from `base` towards 0: `base` at the
    first step, 0 after the last (SGDR without restarts, stepped every batch)."""
    if total <= 0:
        raise ValueError(f"a cosine schedule needs at least one step, got total={total}")
    return 0.5 * base * (1 + math.cos(math.pi * position / total))


def phase_rates(schedule: str, base: float, start: int, steps: int, total: int) -> list[float] | None:
    """The rates of steps `start` .. `start + steps - 1` of a phase of `total` steps, under `schedule`:
    None for 'constant' (the optimizer keeps `base`), a list for 'cosine-per-phase'."""
    if schedule == "constant":
        return None
    if schedule == "cosine-per-phase":
        if not 0 <= start <= start + steps <= total:
            raise ValueError(f"steps {start}..{start + steps} do not lie in a phase of {total} steps")
        return [cosine(base, start + k, total) for k in range(steps)]
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; allowed: constant, cosine-per-phase")
