"""The picks benchmark's summary on tiny, hand-made runs: regrets judged by the table, the largest-network
baseline, the retrain pick among the first k, paired differences."""

from __future__ import annotations

import pytest

from benchmarks import evidence, picks
from nasviz.table import load


@pytest.fixture(scope="module")
def table():
    return load(evidence.TABLE)


def record(table, seed: int, names: dict[str, str], candidates: list[tuple[str, float, float]]) -> dict:
    outcomes = {n: {"best_genotype": g, "cpu_s": 10.0} for n, g in names.items()}
    pool = [{"genotype": g, "fitness": f, "scores": {"5": s}, "cpu_s": {"5": 2.0}} for g, f, s in candidates]
    return {"seed": seed, "steps": [5], "limits": {"none": None}, "outcomes": {"none": outcomes},
            "candidates": {"none": pool}}


def test_largest_takes_flops_then_params_then_a_seeded_choice(table):
    top = max((e.flops, e.params) for e in table)
    tied = {e.genotype for e in table if (e.flops, e.params) == top}
    assert picks.largest(table, 0) in tied and picks.largest(table, 0) == picks.largest(table, 0)
    limit = picks.median_flops(table)
    assert table.entry(picks.largest(table, 1, limit)).flops <= limit
    assert limit in {e.flops for e in table}


def test_summary_judges_each_pick_by_the_table(table):
    ranked = sorted(table, key=lambda e: -e.accuracy)
    best, good, poor = ranked[0].genotype, ranked[10].genotype, ranked[-1].genotype
    names = {"sft-ga": poor, "ga": good, "random": good, "proxy-ga": best, "largest": good}
    # retrain: the first candidate has the best fitness, the second the best retrain score
    records = [record(table, s, names, [(poor, 0.9, 0.5), (best, 0.8, 0.7), (good, 0.7, 0.9)]) for s in (0, 1)]
    out = picks.summarize(records, table, ks=[2, 3])["none"]
    regret = {n: m["regret"]["value"] for n, m in out["by_method"].items()}
    assert regret["proxy-ga"] == pytest.approx(table.regret(best))
    assert regret["sft-ga"] == pytest.approx(table.regret(poor))
    assert regret["sft-ga + retrain k=2 steps=5"] == pytest.approx(table.regret(best))  # best of the first two
    assert regret["sft-ga + retrain k=3 steps=5"] == pytest.approx(table.regret(good))  # the third scores higher
    assert out["by_method"]["sft-ga + retrain k=2 steps=5"]["cpu_s"] == 10.0 + 2 * 2.0
    assert out["minus_largest"]["proxy-ga"]["value"] == pytest.approx(table.regret(best) - table.regret(good))
    assert "proxy-ga" in out["wilcoxon_holm_vs_sft-ga"] and len(out["per_seed"]) == 2


def test_markdown_lists_every_method():
    result = {"results": {"none": {"per_seed": [{}], "by_method": {
        "sft-ga": {"regret": {"value": 0.01, "low": 0.0, "high": 0.02}, "percentile": {"value": 70.0}, "cpu_s": 5.0},
        "largest": {"regret": {"value": 0.005, "low": 0.0, "high": 0.01}, "percentile": {"value": 90.0},
                    "cpu_s": 0.0}},
        "minus_largest": {"sft-ga": {"value": 0.005, "low": 0.0, "high": 0.01}},
        "wilcoxon_holm_vs_largest": {"sft-ga": {"p_holm": 0.5}},
        "minus_sft-ga": {"largest": {"value": -0.005, "low": -0.01, "high": 0.0}},
        "wilcoxon_holm_vs_sft-ga": {"largest": {"p_holm": 0.5}}}}}
    text = picks.markdown(result)
    assert "| sft-ga | +1.00 [+0.00, +2.00] | 70 | 5 | +0.50 [+0.00, +1.00] | 0.500 | — | — |" in text
    assert "| largest |" in text and "unconstrained" in text
