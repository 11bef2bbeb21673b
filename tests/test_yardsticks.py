"""The yardsticks benchmark: its summary on a hand-made runs file (known tau-b values), FLOPs' share of the
variance, and a tiny real run that resumes without recomputing (no timing asserts)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import yardsticks  # noqa: E402
from nasviz.table import load  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def table():
    return load("mini-fashion-mnist")


def hand_made(table, keys: list[str]) -> dict:
    """Lines of a runs file whose scores have known rankings: snip and grad_norm = the table's accuracy
    (tau-b +1), naswot = minus it (-1), jacob_cov = the accuracy but -inf for the worst network (still +1),
    synflow = the accuracy with one pair swapped in seed 1 only."""
    acc = {k: table.entries[k].accuracy for k in keys}
    order = sorted(keys, key=acc.get)
    lines = {}
    for k in keys:
        e = table.entries[k]
        lines[(None, k)] = {"seed": None, "genotype": k, "scores": {"params": e.params, "flops": e.flops},
                            "cpu_s": {"params": 0.02, "flops": 0.04}}
    for seed in (0, 1):
        for k in keys:
            synflow = acc[k]
            if seed == 1 and k in order[-2:]:  # the two best swapped
                synflow = acc[order[-1]] if k == order[-2] else acc[order[-2]]
            scores = {"snip": acc[k], "grad_norm": acc[k], "naswot": -acc[k], "synflow": synflow,
                      "jacob_cov": -math.inf if k == order[0] else acc[k]}
            lines[(seed, k)] = {"seed": seed, "genotype": k, "scores": scores,
                                "cpu_s": {n: 0.1 * (seed + 1) for n in scores}}
    return lines


def distinct(table, n: int = 12) -> list[str]:
    """`n` networks of the table with distinct accuracies."""
    seen, out = set(), []
    for k in sorted(table.entries):
        if table.entries[k].accuracy not in seen:
            seen.add(table.entries[k].accuracy)
            out.append(k)
    return out[:n]


def test_summary_of_a_hand_made_runs_file_gives_the_known_tau_b(table):
    keys = distinct(table)
    lines = hand_made(table, keys)
    sets = {"top": keys[:5], "random": keys[3:11], "region": {0: keys[:6], 1: keys[6:]}, "seeds": [0, 1]}
    out = yardsticks.summarize(lines, table, [0, 1], sets)
    tau = out["tau_b"]
    for set_name in ("whole", "top", "region", "random"):
        assert tau["snip"][set_name]["value"] == pytest.approx(1.0)
        assert tau["naswot"][set_name]["value"] == pytest.approx(-1.0)
        assert tau["jacob_cov"][set_name]["value"] == pytest.approx(1.0)
    acc = [table.entries[k].accuracy for k in keys]
    swapped = [lines[(1, k)]["scores"]["synflow"] for k in keys]
    seed1 = stats.kendalltau(swapped, acc, variant="b").statistic
    assert tau["synflow"]["whole"]["per_seed"] == pytest.approx([1.0, seed1])
    assert tau["synflow"]["whole"]["value"] == pytest.approx((1 + seed1) / 2)
    assert tau["synflow"]["whole"]["low"] <= tau["synflow"]["whole"]["value"] <= tau["synflow"]["whole"]["high"]
    params = stats.kendalltau([table.entries[k].params for k in keys], acc, variant="b").statistic
    assert tau["params"]["whole"]["value"] == pytest.approx(params)
    assert "per_seed" in tau["params"]["whole"] and len(tau["params"]["whole"]["per_seed"]) == 1
    assert tau["snip"]["region"]["over_evidence_seeds"]["n"] == 2
    assert out["sizes_match_table"]["mismatched_count"] == 0
    assert out["cpu_s_per_network"]["snip"]["median_cpu_s"] == pytest.approx(0.15)
    assert out["cpu_s_per_network"]["flops"] == {"median_cpu_s": 0.04, "n": 12, "total_cpu_s": 0.5}
    assert seed1 < 1
    best_accuracy = max(e.accuracy for e in table)
    picks = tau["synflow"]["pick_regret_whole"]["per_seed"]
    assert picks == pytest.approx([best_accuracy - max(acc), best_accuracy - sorted(acc)[-2]])
    assert tau["naswot"]["pick_regret_whole"]["value"] == pytest.approx(best_accuracy - min(acc))
    best = out["best_proxy_whole"]
    assert best in ("snip", "grad_norm", "jacob_cov") and tau[best]["whole"]["value"] == pytest.approx(1.0)
    assert out["set_sizes"] == {"whole": 12, "top": 5, "random": 8, "region": {0: 6, 1: 6}}


def test_summary_without_the_evidence_sets_uses_twenty_random_sets_and_no_region(table):
    keys = distinct(table)
    out = yardsticks.summarize(hand_made(table, keys), table, [0, 1], None)
    assert "region" not in out["tau_b"]["snip"]
    assert out["tau_b"]["naswot"]["random"]["value"] == pytest.approx(-1.0)
    assert "20 random" in out["tau_b"]["naswot"]["random"]["sets"]


def test_the_pick_regret_of_a_tie_is_the_mean_over_the_tied_networks():
    truth = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.5}
    assert yardsticks.pick_regret({"a": 1, "b": 3, "c": 3, "d": 2}, truth, list(truth)) == pytest.approx(0.15)


def test_variance_explained_by_a_categorical_factor_and_a_log_linear_fit():
    out = yardsticks.variance_explained([1, 1, 2, 2], [1.0, 3.0, 5.0, 7.0])
    assert out["categorical_r2"] == pytest.approx(1 - 4 / 20)  # group means 2 and 6: within 4, total 20
    assert out["distinct_values"] == 2
    line = yardsticks.variance_explained([1, 2, 4, 8], [0.0, 1.0, 2.0, 3.0])  # accuracy linear in log2
    assert line["log_linear_r2"] == pytest.approx(1.0) and line["categorical_r2"] == pytest.approx(1.0)


def test_a_tiny_run_writes_its_lines_as_it_goes_and_resumes_without_recomputing(tmp_path):
    runs = tmp_path / "runs.jsonl"
    first = yardsticks.run(tiny=True, runs_file=str(runs), evidence_runs=str(tmp_path / "none.gz"),
                           evidence_ranking=str(tmp_path / "none.json"))
    assert first["benchmark"] == "yardsticks" and first["inputs"]["networks"] == 8
    text = runs.read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 8 + 2 * 8 and {r["seed"] for r in rows} == {None, 0, 1}
    assert first["results"]["sizes_match_table"]["mismatched_count"] == 0
    json.loads(json.dumps(first, allow_nan=False))
    runs.write_text(text + text.splitlines()[-1][:20])  # a line torn by a kill
    again = yardsticks.run(tiny=True, runs_file=str(runs), evidence_runs=str(tmp_path / "none.gz"),
                           evidence_ranking=str(tmp_path / "none.json"))
    assert runs.read_text().startswith(text) and len(runs.read_text().splitlines()) == len(rows) + 1
    assert again["results"]["tau_b"] == first["results"]["tau_b"]
    more = yardsticks.run(tiny=True, seeds=3, runs_file=str(runs), evidence_runs=str(tmp_path / "none.gz"),
                          evidence_ranking=str(tmp_path / "none.json"))
    assert more["results"]["seeds"] == [0, 1, 2]
    assert len([line for line in runs.read_text().splitlines() if line.startswith("{") and line.endswith("}")]) \
        == len(rows) + 8
