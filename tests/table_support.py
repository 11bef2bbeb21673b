"""A synthetic ground-truth table of every mini network, for tests that need one before (or without) the real."""

from __future__ import annotations

import random
from pathlib import Path

from nasviz.space.genotypes import MINI
from nasviz.table.build import networks
from nasviz.table.recipe import Recipe
from nasviz.table.table import from_rows


def synthetic_table(path: Path, seed: int = 0, levels: int | None = None) -> Path:
    """Write a table of made-up accuracies (some with a second seed) for all 648 mini networks to `path`; with
    `levels`, the accuracies take only that many values (one seed each), so ties are common."""
    rng = random.Random(seed)
    rows = []
    for i, key in enumerate(networks(MINI)):
        if levels is not None:
            rows.append({"genotype": key, "seed": 0, "test_accuracy": 0.7 + 0.05 * rng.randrange(levels),
                         "train_loss": 0.5, "params": 1000 + i, "flops": 10_000 + i})
            continue
        accuracy = round(0.7 + 0.2 * rng.random(), 4)
        for s in (0, 1) if i % 4 == 0 else (0,):
            rows.append({"genotype": key, "seed": s, "test_accuracy": round(accuracy + 0.003 * s * rng.random(), 4),
                         "train_loss": 0.5, "params": 1000 + i, "flops": 10_000 + i})
    from_rows("synthetic", MINI, rows, Recipe().to_dict(), {"note": "synthetic, for tests"}).save(path)
    return path
