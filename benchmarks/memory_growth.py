"""memory-growth: resident memory (RSS) of a long search, generation after generation, in one process.

A smoke-sized SFT-GA search (20 generations; 8 with --quick) runs in-process with a run directory (so the
checkpoint, history and event files are written as in a real run). After the initial population
(generation 0) and after every generation the process's RSS is read from /proc/self/status (VmRSS; psutil
is not needed). The figure is the growth from generation 2 to the last generation, in percent: memory that
keeps growing with the number of generations means something holds autograd graphs, per-step records or
histories by accident. Goal: < 5 %.

    python -m benchmarks.memory_growth [--quick]     # prints one JSON object
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

GOAL_PERCENT = 5.0
BASELINE_GENERATION = 2


def rss_mb() -> float:
    """Resident set size of this process in MiB (VmRSS from /proc; ru_maxrss, the peak, where /proc is absent)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(quick: bool = False, *, generations: int | None = None, seed: int = 0) -> dict[str, Any]:
    import torch

    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search

    started, load_before = common.now(), common.loadavg()
    generations = generations or (8 if quick else 20)
    if generations <= BASELINE_GENERATION:
        raise ValueError(f"generations={generations}: need more than {BASELINE_GENERATION} to measure growth")
    config = SearchConfig.from_preset("smoke", generations=generations, seed=seed, device="cpu")
    rss: list[float] = []
    objects: list[int] = []
    with tempfile.TemporaryDirectory(prefix="nasviz-memory-") as tmp:
        search = Search(config, Path(tmp) / "run")
        rss_start = rss_mb()
        while not search.done:
            search.step()  # warm-up + generation 0 first, then one generation per call
            rss.append(round(rss_mb(), 2))
            objects.append(len(gc.get_objects()))
        result = search.result()
        files = sorted(p.name for p in (Path(tmp) / "run").iterdir())

    base = rss[BASELINE_GENERATION]
    growth = round(100 * (rss[-1] - base) / base, 2)
    peak_growth = round(100 * (max(rss[BASELINE_GENERATION:]) - base) / base, 2)
    return common.result(
        "memory-growth",
        figure=f"RSS growth from generation {BASELINE_GENERATION} to generation {generations}",
        value=growth,
        unit="percent",
        goal=f"< {GOAL_PERCENT:g}",
        met=growth < GOAL_PERCENT,
        inputs={"preset": "smoke", "generations": generations, "population": config.population,
                "finetune_steps": config.finetune_steps, "warmup_steps": config.warmup_steps,
                "channels": config.channels, "layers": config.layers, "batch_size": config.batch_size,
                "seed": seed, "device": "cpu", "run_dir": True, "torch_threads": torch.get_num_threads()},
        results={"growth_percent": growth, "peak_growth_percent": peak_growth,
                 "rss_mb_before_warmup": round(rss_start, 2), "rss_mb_per_generation": rss,
                 "python_objects_per_generation": objects,
                 "evaluations": result["evaluations"], "supernet_steps": result["supernet_steps"]["total"],
                 "run_files": files},
        load_before=load_before,
        started=started,
        notes=["RSS is VmRSS read after each call of Search.step() (generation 0 = warm-up + initial population)",
               "no forced garbage collection between generations: the figure is what a user's process sees"],
    )


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:])))
