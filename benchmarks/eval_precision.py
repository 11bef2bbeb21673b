"""eval-precision: does bf16-autocast fitness rank paths as fp32 fitness does, and how much faster is it?

One supernet (warmed up here, or the final supernet of a recorded run with `run_dir`) scores `paths` distinct
paths twice, in fp32 and in bfloat16 autocast (`nasviz.train.steps.fitness`, the engine's BN recalibration + accuracy;
the two evaluations of a path run back to back, in alternating order, so the machine's load hits both alike).
Reported: Kendall tau-b (`nasviz.analysis.kendall`) between the two fitness lists, how many paths score exactly
alike, the largest difference, the speed ratio fp32 / bf16 (total and median per path), and whether the
survivors of one selection change: the recorded run's last region (with `run_dir`), else the first 2N paths,
cut to N by each precision's fitness (ties: fewer parameters, so only the precision differs).

On a CPU without bf16 instructions (see `nasviz.train.precision`) the bf16 numbers are emulated and slow; the search's
eval_precision=auto then keeps fp32. Goal (issue 13): tau >= 0.95 over >= 50 paths and the same survivors.

    python -m benchmarks eval-precision --threads 1                        # 60 paths, a quick-preset supernet
    python -m benchmarks eval-precision --set run_dir='"runs/q0"'          # a recorded run's final supernet
    python -m benchmarks eval-precision --quick --set tiny=true            # proves the pipeline (seconds)
"""

from __future__ import annotations

import random
import statistics
from typing import Any

from benchmarks import common


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seed: int = 0,
    preset: str | None = None,
    search: dict[str, Any] | None = None,
    paths: int | None = None,
    run_dir: str | None = None,
) -> dict[str, Any]:
    from nasviz.analysis import kendall
    from nasviz.runs.rundir import load_history
    from nasviz.search import ga
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search
    from nasviz.space.genotypes import Genotype
    from nasviz.train.precision import cpu_has_bf16
    from nasviz.train.steps import fitness

    started, load_before = common.now(), common.loadavg()
    kind = common.size(quick, tiny)
    paths = paths or {"full": 60, "quick": 12, "tiny": 6}[kind]
    if run_dir is not None:
        engine = Search.load(run_dir)
        rows = load_history(run_dir)
        region = [Genotype.parse(i["genotype"]) for i in rows[-1]["individuals"]] if rows else []
        settings: dict[str, Any] = {"run_dir": str(run_dir)}
    else:
        preset = preset or ("quick" if kind == "full" else "smoke")
        settings = {**(common.TINY_SEARCH if tiny else {}), **(search or {})}
        config = SearchConfig.from_preset(preset, seed=seed, device="cpu", **{**settings, "generations": 0})
        engine = Search(config)
        engine.warmup()  # the warm-up supernet (and the initial population, evaluated as a search would)
        region = []
    if engine.supernet is None:
        raise ValueError("eval-precision needs a supernet; this run takes its fitness from a table")
    c, space = engine.config, engine.space
    rng = random.Random(seed + 31)
    chosen, keys = list(region), {space.key(g) for g in region}
    while len(chosen) < max(paths, len(region)) and len(keys) < space.distinct():
        g = space.sample(rng)
        if space.key(g) not in keys:
            keys.add(space.key(g))
            chosen.append(g)

    scores: dict[str, list[float]] = {"fp32": [], "bf16": []}
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for k, g in enumerate(chosen):
        for precision in (("fp32", "bf16") if k % 2 == 0 else ("bf16", "fp32")):
            start = common.now()
            scores[precision].append(fitness(engine.supernet, g, engine.calibration, engine.fitness_batches,
                                             precision))
            seconds[precision].append(common.now() - start)
    tau, p = kendall(scores["fp32"], scores["bf16"])
    n = c.population
    group = chosen[: len(region)] if region else chosen[: 2 * n]
    params = [engine.params_of(g) for g in group]
    survivors = {name: sorted(space.key(group[i]) for i in
                              ga.environmental_selection(values[: len(group)], params, min(n, len(group))))
                 for name, values in scores.items()}
    diffs = [abs(a - b) for a, b in zip(scores["fp32"], scores["bf16"])]
    ratio = sum(seconds["fp32"]) / sum(seconds["bf16"])
    same = survivors["fp32"] == survivors["bf16"]
    tau_value = None if tau != tau else common.rounded(tau)
    return common.result(
        "eval-precision",
        figure="Kendall tau-b between fp32 and bf16-autocast fitness of the same paths",
        value=tau_value,
        unit="tau-b",
        goal="tau >= 0.95 over >= 50 paths and the same survivors",
        met=None if tau_value is None else bool(tau_value >= 0.95 and len(chosen) >= 50 and same),
        inputs={"size": kind, "seed": seed, "preset": preset, "search_overrides": settings, "paths": len(chosen),
                "fitness_images": c.fitness_images, "bn_batches": c.bn_batches, "eval_batch_size": c.eval_batch_size,
                "supernet_steps": engine.steps, "selection": {"group": len(group), "keep": min(n, len(group)),
                                                              "from": "recorded region" if region else "paths"}},
        results={"kendall_tau_b": tau_value, "p_value": None if p != p else common.rounded(p, 6),
                 "identical": sum(d == 0 for d in diffs), "max_abs_difference": common.rounded(max(diffs)),
                 "mean_abs_difference": common.rounded(statistics.fmean(diffs)),
                 "speed_ratio_fp32_over_bf16": common.rounded(ratio, 3),
                 "median_path_ratio": common.rounded(statistics.median(
                     a / b for a, b in zip(seconds["fp32"], seconds["bf16"])), 3),
                 "seconds": {name: common.summary(values) for name, values in seconds.items()},
                 "same_survivors": same, "cpu_has_bf16": cpu_has_bf16(),
                 "fitness": {name: [common.rounded(v, 5) for v in values] for name, values in scores.items()}},
        load_before=load_before,
        started=started,
        notes=["both precisions recalibrate BatchNorm on the same batches and score the same fitness images",
               "on a CPU without bf16 instructions bf16 is emulated: the speed ratio then says so, and "
               "eval_precision=auto keeps fp32"],
    )
