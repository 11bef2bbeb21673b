"""nasviz benchmarks: `python -m benchmarks NAME [--quick]` prints one JSON object per benchmark.

    step-ratio       supernet single-path step / standalone network step (goal <= 1.10)
    mixed-op-ratio   single-path step / DARTS mixed-operation supernet step (goal <= 0.20)
    eval-throughput  candidate evaluations per minute, and the evaluation batch size (goal >= 60)
    quick-search     wall time and peak RSS of a whole quick search (goal <= 5 min, <= 1.5 GB)
    ranking          Kendall tau of supernet fitness vs from-scratch accuracy, with / without fine-tuning
    methods          sft-ga vs ga vs random, compared by from-scratch accuracy of the best genotypes
    gpu              per-step costs at the paper preset's size and the projected paper-preset search time
    table-search     searches per minute with fitness from the ground-truth table (goal >= 1,000)
    notebooks        wall time of each notebook (papermill) at a preset (default: class)
    eval-precision   Kendall tau-b of bf16-autocast vs fp32 fitness over >= 50 paths, and the speed ratio
    distributed      one search on 1 process x 2 threads vs 2 processes x 1 thread (torchrun); N-GPU projection
    yardsticks       Kendall tau-b vs the table of zero-cost proxies, params and FLOPs over the mini space
    picks            regret of the returned network: sft-ga, ga, random, proxy-GA, retrain picks, largest network
    memory-growth    RSS of a long search, generation after generation (when benchmarks/memory_growth.py exists)

Every benchmark module has `run(quick: bool = False, **sizes) -> dict` (the layout is in `benchmarks.common`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

REGISTRY: dict[str, str] = {
    "step-ratio": "benchmarks.step_ratio",
    "mixed-op-ratio": "benchmarks.mixed_op_ratio",
    "eval-throughput": "benchmarks.eval_throughput",
    "quick-search": "benchmarks.quick_search",
    "ranking": "benchmarks.ranking",
    "methods": "benchmarks.methods",
    "gpu": "benchmarks.gpu",
    "table-search": "benchmarks.table_search",
    "notebooks": "benchmarks.notebooks",
    "eval-precision": "benchmarks.eval_precision",
    "distributed": "benchmarks.distributed",
    "yardsticks": "benchmarks.yardsticks",
    "picks": "benchmarks.picks",
    "busy-threads": "benchmarks.busy_threads",
}
OPTIONAL: dict[str, str] = {"memory-growth": "benchmarks.memory_growth"}
"""Benchmarks listed only when their module exists."""


def available() -> dict[str, str]:
    """Benchmark name -> module, in the order `all` runs them."""
    found = dict(REGISTRY)
    for name, module in OPTIONAL.items():
        if importlib.util.find_spec(module) is not None:
            found[name] = module
    return found


def run(name: str, quick: bool = False, **kwargs: Any) -> dict[str, Any]:
    """Run benchmark `name` and return its result dict (`benchmark` is always its first key)."""
    modules = available()
    if name not in modules:
        raise KeyError(f"unknown benchmark {name!r}; available: {', '.join(modules)}")
    out = importlib.import_module(modules[name]).run(quick=quick, **kwargs)
    return {"benchmark": name, **{k: v for k, v in out.items() if k != "benchmark"}}
