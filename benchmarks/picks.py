"""picks: which final pick returns the better network? Free yardsticks, proxy-GA and short retraining beside
SFT-GA, judged by the `mini` table over the evidence's paired seeds.

Per seed, in `mini` at the evidence's sizes (`benchmarks.evidence`, the quick preset):
- **sft-ga**, **ga** and **random** with equal search evaluations (GA and random run twice the generations);
- **proxy-GA**: GA with a zero-cost proxy (`proxy`) as fitness, equal evaluations, no supernet;
- **sft-ga + retrain**: SFT-GA's `top` best candidates by last fitness, of everything it evaluated, each trained
  from scratch for each of `steps` SGD steps (`nasviz.search.final_pick`) and scored on held-out training images; the
  pick with k candidates is the best of the first k (k in `ks`);
- **largest**: no search; the most FLOPs, then the most parameters, then a seeded random choice among the tied.
With `budget`, all of it again under max_flops = the space's median FLOPs, judged against the best network within
that budget. CPU seconds are process time; a retrain pick's are SFT-GA's plus its k retrainings'.

Statistics over seeds (scipy): means with 95 % bootstrap intervals, paired differences to the largest-network
baseline and to sft-ga (other - reference: a negative regret difference means the other returned better
networks), Wilcoxon signed-rank with Holm correction. Seed jobs are appended to a runs file as they finish, so the
benchmark resumes, and two processes can share the seeds.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from benchmarks import common, evidence

SIZES: dict[str, dict[str, Any]] = {
    "full": {"preset": "quick", "search": {}},
    "quick": {"preset": "class", "search": {}},
    "tiny": {"preset": "smoke", "search": {"warmup_steps": 4, "population": 3, "generations": 1,
                                           "finetune_steps": 4, "fitness_images": 64}},
}
CONSTRAINTS = ("none", "budget")
SEARCHES = ("sft-ga", "ga", "random", "proxy-ga")


def median_flops(table) -> int:
    """The space's median FLOPs (the lower median: a value some network has)."""
    return statistics.median_low(e.flops for e in table)


def largest(table, seed: int, max_flops: int | None = None) -> str:
    """The largest network (within `max_flops`): most FLOPs, then most parameters, then a seeded random choice."""
    pool = [e for e in table if max_flops is None or e.flops <= max_flops]
    top = max((e.flops, e.params) for e in pool)
    tied = sorted(e.genotype for e in pool if (e.flops, e.params) == top)
    return random.Random(seed).choice(tied)


def search_configs(seed: int, size: str, proxy: str, max_flops: int | None) -> dict[str, Any]:
    from nasviz.search.config import SearchConfig

    sizes = SIZES[size]
    base = SearchConfig.from_preset(sizes["preset"], seed=seed, **{**evidence.BASE, **sizes["search"]},
                                    **({"max_flops": max_flops} if max_flops else {}))
    g2 = {"generations": 2 * base.generations}
    return {"sft-ga": base, "ga": base.replace(method="ga", **g2), "random": base.replace(method="random", **g2),
            "proxy-ga": base.replace(method="ga", fitness=proxy, **g2)}


def retrained(search, top: int, steps: list[int], images: int) -> list[dict[str, Any]]:
    """SFT-GA's `top` candidates, each retrained for every budget in `steps` (scores and CPU seconds by budget)."""
    from nasviz.search import final_pick

    out = []
    for candidate in final_pick.candidates(search.state.latest, top):
        row = {"genotype": candidate.genotype, "fitness": candidate.fitness, "scores": {}, "cpu_s": {}}
        for n in steps:
            config = search.config.replace(final_pick="retrain", final_steps=n, final_images=images)
            start = time.process_time()
            row["scores"][str(n)] = final_pick.retrain_score(search.space.parse(candidate.genotype), 0,
                                                             search.evaluator.dataset(), config)
            row["cpu_s"][str(n)] = round(time.process_time() - start, 2)
        out.append(row)
    return out


def seed_job(seed: int, size: str, proxy: str, top: int, steps: list[int], budget: bool,
             images: int) -> dict[str, Any]:
    """Every search and retraining of one seed (see the module docstring)."""
    from nasviz.table import load

    table = load(evidence.TABLE)
    started = time.process_time()
    limits = {"none": None, **({"budget": median_flops(table)} if budget else {})}
    outcomes: dict[str, dict] = {}
    candidates: dict[str, list] = {}
    for constraint, max_flops in limits.items():
        outcomes[constraint] = {}
        for name, config in search_configs(seed, size, proxy, max_flops).items():
            search, result = evidence.run_variant(config, None)
            outcomes[constraint][name] = evidence.outcome(search, result)
            if name == "sft-ga":
                candidates[constraint] = retrained(search, top, steps, images)
        outcomes[constraint]["largest"] = {"best_genotype": largest(table, seed, max_flops), "cpu_s": 0.0}
    return {"seed": seed, "size": size, "proxy": proxy, "top": top, "steps": steps, "images": images, "limits": limits,
            "outcomes": outcomes, "candidates": candidates, "cpu_s": round(time.process_time() - started, 1)}


def pick(candidates: list[dict], k: int, steps: int) -> str:
    """The retrain pick among the first `k` candidates at budget `steps`: best score, ties to the better fitness."""
    return max(candidates[:k], key=lambda c: (c["scores"][str(steps)], c["fitness"]))["genotype"]


def judged(record: dict, constraint: str, table, ks: list[int]) -> dict[str, dict[str, float]]:
    """Each method's returned network judged by the table (regret against the best within the constraint)."""
    limit = record["limits"][constraint]
    best = max(e.accuracy for e in table if limit is None or e.flops <= limit)
    raw = record["outcomes"][constraint]
    out = {}
    for name in (*SEARCHES, "largest"):
        g = raw[name]["best_genotype"]
        out[name] = {"regret": best - table.accuracy(g), "percentile": table.percentile(g), "cpu_s": raw[name]["cpu_s"]}
    pool = record["candidates"][constraint]
    for n in record["steps"]:
        for k in ks:
            g = pick(pool, k, n)
            cpu = raw["sft-ga"]["cpu_s"] + sum(c["cpu_s"][str(n)] for c in pool[:k])
            out[f"sft-ga + retrain k={k} steps={n}"] = {"regret": best - table.accuracy(g),
                                                        "percentile": table.percentile(g), "cpu_s": cpu}
    return out


def summarize(records: list[dict], table, ks: list[int]) -> dict[str, Any]:
    from nasviz.analysis import holm_wilcoxon, mean_with_interval, paired_difference

    out: dict[str, Any] = {}
    for constraint in [c for c in CONSTRAINTS if all(c in r["limits"] for r in records)]:
        per_seed = [judged(r, constraint, table, ks) for r in records]
        names = list(per_seed[0])

        def of(name: str, key: str = "regret", per_seed: list[dict] = per_seed) -> list[float]:
            return [s[name][key] for s in per_seed]

        block = {"by_method": {n: {"regret": mean_with_interval(of(n)).to_json(),
                                   "percentile": mean_with_interval(of(n, "percentile")).to_json(),
                                   "cpu_s": statistics.fmean(of(n, "cpu_s"))} for n in names}}
        for reference in ("largest", "sft-ga"):
            others = [n for n in names if n != reference]
            block[f"minus_{reference}"] = {n: paired_difference(of(n), of(reference)).to_json() for n in others}
            block[f"wilcoxon_holm_vs_{reference}"] = holm_wilcoxon(of(reference), {n: of(n) for n in others})
        block["per_seed"] = [{"seed": r["seed"], **{n: s[n]["regret"] for n in names}}
                             for r, s in zip(records, per_seed)]
        out[constraint] = block
    return out


def run(quick: bool = False, *, tiny: bool = False, seeds: list[int] | int | None = None,
        runs_file: str | None = None, proxy: str = "snip", top: int = 3, steps: list[int] | int = 300,
        images: int | None = None, ks: list[int] | None = None, budget: bool = True,
        compute: bool = True) -> dict[str, Any]:
    from nasviz.table import load

    started, load_before = common.now(), common.loadavg()
    size = common.size(quick, tiny)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds if seeds is not None else range(
        {"full": 20, "quick": 3, "tiny": 2}[size]))
    steps = [steps] if isinstance(steps, int) else list(steps)
    ks = ks or sorted({min(2, top), top})
    images = images or {"full": 10_000, "quick": 5000, "tiny": 100}[size]
    runs_file = runs_file or f"benchmarks/results/picks/runs-{size}.jsonl"
    key = evidence.settings_key({"size": size, "proxy": proxy, "top": top, "steps": steps, "budget": budget,
                                 "images": images, "sizes": SIZES[size]})
    done = evidence.read_records(runs_file, key)
    for seed in seeds:
        if seed not in done and compute:
            record = {**seed_job(seed, size, proxy, top, steps, budget, images), "key": key}
            evidence.append_record(runs_file, record)
            done[seed] = record
    records = [done[s] for s in seeds if s in done]
    table = load(evidence.TABLE)
    stats = summarize(records, table, ks) if records else {}
    best = None
    if stats:
        diffs = stats["none"]["minus_largest"]
        best = min(diffs, key=lambda n: diffs[n]["value"])
    return common.result(
        "picks",
        figure=f"regret of the returned network minus the largest network's: the best method ({best})",
        value=common.rounded(stats["none"]["minus_largest"][best]["value"]) if best else None,
        unit="accuracy (fraction; 0.01 = 1 point), mean over seeds; 95 % interval in results",
        goal="< 0 with the interval below 0, regret <= 0.003, at <= 2x the CPU of the sft-ga search",
        met=None if not best else (stats["none"]["minus_largest"][best]["high"] < 0
                                   and stats["none"]["by_method"][best]["regret"]["value"] <= 0.003
                                   and stats["none"]["by_method"][best]["cpu_s"]
                                   <= 2 * stats["none"]["by_method"]["sft-ga"]["cpu_s"]),
        inputs={"size": size, "seeds": [r["seed"] for r in records], "runs_file": runs_file, "proxy": proxy,
                "top": top, "steps": steps, "images": images, "ks": ks, "budget": budget,
                "preset": SIZES[size]["preset"],
                "space": "mini", "table": evidence.TABLE},
        results=stats,
        load_before=load_before,
        started=started,
        notes=["regret = best mean accuracy (within the budget, under it) minus the returned network's",
               "cpu_s: process time of the search, warm-up included; retrain picks add their k retrainings",
               "largest: most FLOPs, then most params, then a seeded random choice among the tied"],
    )
