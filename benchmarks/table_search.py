"""table-search: searches per minute when the fitness is the ground-truth table (`fitness="table"`).

Each search is a whole quick-size search (population 10, 6 generations, 70 evaluations) in the mini space whose
every score is a table lookup: no data, no supernet, no training. It uses the shipped table where there is one,
else a synthetic table of all 648 mini networks (made-up accuracies: the speed does not depend on them). Goal
(issue 12): thousands of searches a minute, so a class can run GA and random search hundreds of times each.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 1000.0


def _synthetic(folder: Path) -> str:
    import random

    from nasviz.space.genotypes import MINI
    from nasviz.table.build import networks
    from nasviz.table.recipe import Recipe
    from nasviz.table.table import from_rows

    rng = random.Random(0)
    rows = [{"genotype": k, "seed": 0, "test_accuracy": 0.7 + 0.2 * rng.random(), "train_loss": 0.5,
             "params": 1000, "flops": 1000} for k in networks(MINI)]
    path = folder / "synthetic.json.gz"
    from_rows("synthetic", MINI, rows, Recipe().to_dict(), {}).save(path)
    return str(path)


def run(quick: bool = False, *, tiny: bool = False, searches: int | None = None, rounds: int | None = None) \
        -> dict[str, Any]:
    from benchmarks import common
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search
    from nasviz.table import available

    load_before, started = common.loadavg(), common.now()
    searches = searches or (3 if tiny else 20 if quick else 200)
    rounds = rounds or (1 if tiny else 5)
    with tempfile.TemporaryDirectory() as tmp:
        table = None if "mini-fashion-mnist" in available() else _synthetic(Path(tmp))
        base = SearchConfig.from_preset("quick", space="mini", fitness="table", table=table)
        Search(base).run()  # warm the caches (table file, canonical keys)
        per_minute = {}
        for method in ("ga", "random"):
            rates = []
            for r in range(rounds):
                start = time.perf_counter()
                for seed in range(searches):
                    Search(base.replace(method=method, seed=r * searches + seed)).run()
                rates.append(60 * searches / (time.perf_counter() - start))
            per_minute[method] = statistics.median(rates)
    slowest = min(per_minute.values())
    return common.result(
        "table-search",
        figure="quick-size table-fitness searches per minute (slower of ga and random, median of rounds)",
        value=round(slowest), unit="searches/min", goal=f">= {GOAL:g}", met=slowest >= GOAL,
        inputs={"table": "mini-fashion-mnist" if table is None else "synthetic (no shipped table yet)",
                "searches_per_round": searches, "rounds": rounds, "evaluations_per_search": base.evaluation_budget},
        results={"searches_per_minute_median": {m: round(v) for m, v in per_minute.items()}},
        load_before=load_before, started=started,
        notes=["one process, one search after another; the table is read once and cached"],
    )
