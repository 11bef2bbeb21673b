"""methods: does SFT-GA find better architectures than GA without fine-tuning and random search? Judged by the table.

Per seed (the seed jobs of `benchmarks/evidence.py`, shared with `ranking`), six searches in `mini` with the same
number of search evaluations: sft-ga, sft-ga with uniform path sampling (no focusing), sft-ga without parent
re-evaluation, ga, and ga and random search whose warm-up gets the fine-tuning steps added (equal supernet
steps). Outcomes from the table: the regret of the returned genotype (table best minus its accuracy), its
percentile, and the regret of the best network the method evaluated at all ("explored": exploring well vs
picking well). Statistics: means with 95 % bootstrap intervals, paired differences to sft-ga (other - sft-ga,
so a positive regret difference means sft-ga did better) with bootstrap intervals, and Wilcoxon signed-rank
tests with Holm correction over the five comparisons (scipy).
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import common, evidence

OUTCOMES = ("regret", "percentile", "explored_regret")


def summarize(records: list[dict], table) -> dict[str, Any]:
    from nasviz.analysis import holm_wilcoxon, mean_with_interval, paired_difference

    variants = list(evidence.VARIANTS)
    judged = [{v: evidence.judged(r["outcomes"][v], table) for v in variants} for r in records]

    def of(v: str, key: str) -> list[float]:
        return [j[v][key] for j in judged]

    by_variant = {v: {**{o: mean_with_interval(of(v, o)).to_json() for o in OUTCOMES},
                      "evaluations": judged[0][v]["evaluations"],
                      "supernet_steps": judged[0][v]["supernet_steps"],
                      "genotypes_evaluated": statistics.fmean(of(v, "genotypes_evaluated")),
                      "cpu_s": statistics.fmean(of(v, "cpu_s"))}
                  for v in variants}
    others = [v for v in variants if v != "sft-ga"]
    paired = {o: {v: paired_difference(of(v, o), of("sft-ga", o)).to_json() for v in others} for o in OUTCOMES}
    tests = {o: holm_wilcoxon(of("sft-ga", o), {v: of(v, o) for v in others}) for o in OUTCOMES}
    wins = {v: {"sft-ga better": sum(a < b for a, b in zip(of("sft-ga", "regret"), of(v, "regret"))),
                "ties": sum(a == b for a, b in zip(of("sft-ga", "regret"), of(v, "regret"))),
                "sft-ga worse": sum(a > b for a, b in zip(of("sft-ga", "regret"), of(v, "regret")))}
            for v in others}
    return {"by_variant": by_variant, "paired_minus_sft_ga": paired, "wilcoxon_holm": tests,
            "regret_wins": wins,
            "per_seed": [{"seed": r["seed"], **{v: {o: j[v][o] for o in OUTCOMES} for v in variants}}
                         for r, j in zip(records, judged)]}


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seeds: list[int] | int | None = None,
    runs_file: str | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from nasviz.table import load

    started, load_before = common.now(), common.loadavg()
    size = common.size(quick, tiny)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds if seeds is not None else range(
        {"full": 20, "quick": 3, "tiny": 2}[size]))
    runs_file = runs_file or f"benchmarks/results/evidence/runs-{size}.jsonl"
    records = evidence.records(seeds, size, runs_file, search)
    stats = summarize(records, load((search or {}).get("table") or evidence.TABLE))
    diffs = stats["paired_minus_sft_ga"]["regret"]
    closest = min(diffs, key=lambda v: diffs[v]["value"])
    return common.result(
        "methods",
        figure=f"regret of the returned genotype: the best control ({closest}) minus sft-ga",
        value=common.rounded(diffs[closest]["value"]),
        unit="accuracy (fraction; 0.01 = 1 point), mean over seeds; 95 % interval in results",
        goal="> 0 with the interval above 0 for every control (sft-ga returns better networks)",
        met=all(d["low"] > 0 for d in diffs.values()),
        inputs={"size": size, "seeds": seeds, "runs_file": runs_file, "search_overrides": search or {},
                "preset": evidence.SIZES[size]["preset"], "space": "mini", "variants": list(evidence.VARIANTS)},
        results=stats,
        load_before=load_before,
        started=started,
        notes=["every variant makes the same number of search evaluations (see by_variant.evaluations); "
               "diagnostic evaluations are off",
               "regret = the table's best mean accuracy minus the returned genotype's (0 = the best of the space)",
               "explored_regret = regret of the best network among everything the method evaluated"],
    )
