"""methods: SFT-GA vs GA without fine-tuning vs random search, judged by from-scratch accuracy.

For every seed, the three methods share one warm-up (the warm-up and the initial population do not depend on
the method, so each method continues from a copy of the same state: identical to running it from scratch,
and the warm-up is paid once). Then each runs its generations; all evaluate the same number of NEW genotypes
(population x (generations + 1)), while SFT-GA also spends fine-tuning steps and re-evaluations. The best
genotype of each run is trained from scratch (`nasviz.scratch.train_from_scratch`, the same small settings and
seed for all) and its test accuracy is what the methods are compared by: mean and std over seeds, and the
per-seed paired differences. The seed-to-seed spread of from-scratch training of one genotype is measured
too, so a reader can tell a difference from noise.
"""

from __future__ import annotations

import copy
import statistics
from typing import Any

from benchmarks import common

METHODS = ("sft-ga", "ga", "random")


def mean_std(values: list[float]) -> dict[str, float | None]:
    return {"mean": common.rounded(statistics.fmean(values)) if values else None,
            "std": common.rounded(statistics.stdev(values)) if len(values) > 1 else None,
            "n": len(values)}


def shared_warmup_runs(config, methods=METHODS) -> dict[str, Any]:
    """Run `methods` from one shared warm-up of `config`; returns {method: (Search, result)}. Every method must
    warm up as many steps (with `equal_compute`, the baselines warm up longer: run those on their own)."""
    from nasviz.search import Search

    lengths = {m: config.replace(method=m).warmup_total for m in methods}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the methods warm up different numbers of steps ({lengths}); a shared warm-up needs the "
                         "same (equal_compute lengthens the warm-up of methods that do not fine-tune)")
    base = Search(config.replace(method=methods[0]))
    base.warmup()
    state = base.state_dict()
    runs = {}
    for method in methods:
        search = Search(config.replace(method=method))
        search.load_state_dict(copy.deepcopy(state))
        runs[method] = (search, search.run())
    return runs


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seeds: list[int] | tuple[int, ...] | None = None,
    preset: str | None = None,
    search: dict[str, Any] | None = None,
    scratch: dict[str, Any] | None = None,
    noise_repeats: int | None = None,
    methods: tuple[str, ...] | list[str] = METHODS,
) -> dict[str, Any]:
    from nasviz.config import SearchConfig
    from nasviz.space import Genotype

    started, load_before = common.now(), common.loadavg()
    kind = common.size(quick, tiny)
    preset = preset or ("quick" if kind == "full" else "smoke")
    seeds = list(seeds if seeds is not None else (0, 1, 2))
    search_settings = {**(common.TINY_SEARCH if tiny else {}), **(search or {})}
    scratch = {**common.SCRATCH[kind], **(scratch or {})}
    noise_repeats = noise_repeats if noise_repeats is not None else {"full": 2, "quick": 1, "tiny": 1}[kind]
    methods = tuple(methods)

    cache: dict = {}
    per_run = []
    data = None
    for seed in seeds:
        config = SearchConfig.from_preset(preset, seed=seed, device="cpu", **search_settings)
        for method, (engine, result) in shared_warmup_runs(config, methods).items():
            data = engine.data
            best = Genotype.parse(result["best_genotype"])
            trained = common.scratch_accuracy(best, data, scratch, cache)
            per_run.append({"seed": seed, "method": method, "test_accuracy": trained["test_accuracy"],
                            "best_fitness": result["best_fitness"], "params": trained["params"],
                            "search_wall_s": result["search_wall_time_s"],
                            "supernet_steps": result["supernet_steps"]["total"],
                            "evaluations": result["evaluations"],
                            "genotypes_evaluated": result["genotypes_evaluated"],
                            "best_genotype": result["best_genotype"]})

    def of(method: str, key: str) -> list[float]:
        return [r[key] for r in per_run if r["method"] == method]

    summary = {m: {"test_accuracy": mean_std(of(m, "test_accuracy")), "best_fitness": mean_std(of(m, "best_fitness")),
                   "search_wall_s": mean_std(of(m, "search_wall_s")),
                   "supernet_steps": of(m, "supernet_steps")[0] if of(m, "supernet_steps") else None,
                   "evaluations": of(m, "evaluations")[0] if of(m, "evaluations") else None,
                   "genotypes_evaluated": of(m, "genotypes_evaluated")[0] if of(m, "genotypes_evaluated") else None}
               for m in methods}
    paired = {}
    if "sft-ga" in methods:
        for other in methods:
            if other != "sft-ga":
                diffs = [a - b for a, b in zip(of("sft-ga", "test_accuracy"), of(other, "test_accuracy"))]
                paired[f"sft-ga minus {other}"] = {**mean_std(diffs), "wins": sum(d > 0 for d in diffs),
                                                  "ties": sum(d == 0 for d in diffs),
                                                  "losses": sum(d < 0 for d in diffs)}
    noise = None
    first = next((r for r in per_run if r["method"] == methods[0]), None)
    if first is not None and noise_repeats > 0:
        g = Genotype.parse(first["best_genotype"])
        accs = [first["test_accuracy"]] + [
            common.scratch_accuracy(g, data, {**scratch, "seed": scratch["seed"] + 1 + r}, cache)["test_accuracy"]
            for r in range(noise_repeats)]
        noise = {"genotype": first["best_genotype"], "accuracies": accs, **mean_std(accs)}

    means = {m: summary[m]["test_accuracy"]["mean"] for m in methods}
    value = met = None
    if "sft-ga" in methods and len(methods) > 1:
        best_other = max(means[m] for m in methods if m != "sft-ga")
        value = common.rounded(means["sft-ga"] - best_other)
        met = value > 0
    return common.result(
        "methods",
        figure="mean from-scratch test accuracy: sft-ga minus the best baseline",
        value=value,
        unit="accuracy difference (fraction; 0.01 = 1 point)",
        goal="> 0 (sft-ga beats ga and random at equal new-genotype evaluations)",
        met=met,
        inputs={"size": kind, "preset": preset, "search_overrides": search_settings, "seeds": seeds,
                "methods": list(methods), "scratch": scratch, "noise_repeats": noise_repeats,
                "shared_warmup": True},
        results={"test_accuracy_mean": means, "by_method": summary, "paired": paired,
                 "scratch_seed_spread": noise, "runs": per_run},
        load_before=load_before,
        started=started,
        notes=["equal evaluations = equal number of new genotypes evaluated; sft-ga additionally spends "
               "fine-tuning steps and re-evaluates parents (see supernet_steps and evaluations)",
               "best_fitness values of different methods come from different supernet weights and are not "
               "comparable with each other"],
    )
