"""The controls a fair comparison of methods needs (issue 13): equal compute, diagnostic evaluations counted apart,
the tie-break, the evaluation precision, the learning-rate schedule of the training phases, and the recency check."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from table_support import synthetic_table

from nasviz.analysis import last_trained, recency_effect, recency_records
from nasviz.errors import ConfigError
from nasviz.runs.events import Checkpoint
from nasviz.runs.rundir import load_history
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.train import precision, schedule

TINY = dict(warmup_steps=4, population=3, generations=2, finetune_steps=6, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2)


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{**TINY, **overrides})


def fitness_values(rows: list[dict]) -> list[list[float]]:
    return [[i["fitness"] for i in row["individuals"]] for row in rows]


# --- equal compute -----------------------------------------------------------------------------------------------
def test_equal_compute_gives_the_baselines_the_fine_tuning_steps_as_warm_up(tmp_path):
    assert tiny(equal_compute=True).warmup_total == 4  # sft-ga fine-tunes: nothing added
    assert tiny(method="ga").warmup_total == 4  # the switch is off by default
    for method in ("ga", "random"):
        config = tiny(method=method, equal_compute=True)
        assert config.warmup_total == 4 + 2 * 6
        result = Search(config, tmp_path / method).run()
        rows = load_history(tmp_path / method)
        assert result["supernet_steps"] == {"warmup": 16, "finetune": 0, "total": 16}  # sft-ga's total: 4 + 2 x 6
        assert len(rows[0]["trained_paths"]) == 16 and result["switches"]["equal_compute"] is True
        assert result["evaluations"] == 3 * 3 and result["diagnostic_evaluations"] == 0
    assert tiny(method="sft-ga", finetune=False, equal_compute=True).warmup_total == 16


# --- diagnostic evaluations ---------------------------------------------------------------------------------------
def test_diagnostic_evaluations_are_counted_apart_and_change_no_selection(tmp_path):
    plain = Search(tiny(record_before=False), tmp_path / "plain").run()
    cut = Search(tiny(), tmp_path / "cut")  # record_before=True, stopped after generation 1 and resumed
    cut.step()
    cut.step()
    del cut
    recorded = Search.resume(tmp_path / "cut").run()
    # the search's own: 3 initial + 2 generations x (3 parents re-evaluated + 3 offspring)
    assert plain["evaluations"] == recorded["evaluations"] == 3 + 2 * 6
    assert (plain["diagnostic_evaluations"], recorded["diagnostic_evaluations"]) == (0, 2 * 3)
    assert [r["diagnostic_evaluations"] for r in load_history(tmp_path / "cut")] == [0, 3, 6]
    assert fitness_values(load_history(tmp_path / "plain")) == fitness_values(load_history(tmp_path / "cut"))
    assert plain["top_k"] == recorded["top_k"]


# --- tie-break ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tied_table(tmp_path_factory) -> Path:
    """A synthetic mini table whose accuracies take only three values: most comparisons are ties."""
    return synthetic_table(tmp_path_factory.mktemp("tied") / "tied.json.gz", levels=3)


def tied_search(table: Path, **overrides) -> tuple[dict, list[dict]]:
    config = SearchConfig.from_preset("quick", space="mini", fitness="table", table=str(table), population=10,
                                      generations=8, **overrides)
    search = Search(config)
    rows = [search.warmup()]
    while not search.done:
        rows.append(search.step())
    return search.result(), rows


def tied_cuts(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(survivor, non-survivor) pairs of equal fitness, over every generation."""
    return [(s, u) for row in rows for s in row["individuals"] if s["selected"]
            for u in row["individuals"] if not u["selected"] and u["fitness"] == s["fitness"]]


def test_params_tie_break_keeps_the_smaller_network_and_random_does_not(tied_table):
    _, by_params = tied_search(tied_table, tie_break="params")
    cuts = tied_cuts(by_params)
    assert cuts and all(s["params"] < u["params"] for s, u in cuts)
    result, by_chance = tied_search(tied_table)  # the default: random
    cuts = tied_cuts(by_chance)
    assert cuts and any(s["params"] > u["params"] for s, u in cuts)
    assert any(s["role"] == "offspring" and u["role"] == "parent" for s, u in cuts)
    again, rows = tied_search(tied_table)
    assert again["top_k"] == result["top_k"] and [r["population"] for r in rows] == \
        [r["population"] for r in by_chance]  # random, but by the seed
    _, other = tied_search(tied_table, seed=1)
    assert [r["population"] for r in other] != [r["population"] for r in by_chance]


def test_a_saved_config_without_a_tie_break_resumes_with_the_old_one():
    saved = tiny().to_dict()
    del saved["tie_break"]
    assert SearchConfig().tie_break == "random"
    assert SearchConfig.from_dict(saved).tie_break == "params"
    assert SearchConfig.resumed(saved, None).tie_break == "params"  # not refused as a change
    with pytest.raises(ConfigError, match="unknown tie_break 'fewest'.*allowed: random, params"):
        tiny(tie_break="fewest")


# --- evaluation precision -----------------------------------------------------------------------------------------
def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\n"
                   "processor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert "avx512_bf16" in precision.cpu_flags(x86) and precision.cpu_flags(x86) & precision.BF16_FLAGS
    assert precision.cpu_flags(arm) & precision.BF16_FLAGS
    assert not precision.cpu_flags(old) & precision.BF16_FLAGS
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def test_precision_is_resolved_per_device_and_falls_back_to_fp32(caplog):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.resolve("fp32", cuda) == "bf16"  # CUDA evaluates in bf16 autocast, as it trains
    assert precision.resolve("fp32", cpu, has_bf16=True) == "fp32"
    assert precision.resolve("auto", cpu, has_bf16=True) == precision.resolve("bf16", cpu, has_bf16=True) == "bf16"
    with caplog.at_level(logging.WARNING, logger="nasviz"):
        assert precision.resolve("auto", cpu, has_bf16=False) == "fp32"
        assert not caplog.records
        assert precision.resolve("bf16", cpu, has_bf16=False) == "fp32"
    assert "no bf16 instructions" in caplog.text
    with precision.autocast(cpu, "bf16"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.bfloat16
    with precision.autocast(cpu, "fp32"):
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32
    with pytest.raises(ConfigError, match="unknown eval_precision 'half'.*allowed: fp32, bf16, auto"):
        tiny(eval_precision="half")


def test_a_search_records_the_precision_it_evaluates_in():
    auto = Search(tiny(eval_precision="auto"))
    assert auto.precision == ("bf16" if precision.cpu_has_bf16() else "fp32") == auto.result()["eval_precision"]
    assert Search(tiny()).precision == "fp32"


# --- learning-rate schedule ---------------------------------------------------------------------------------------
def test_cosine_phase_rates_anneal_to_zero_and_chunks_give_the_whole_phase():
    assert schedule.phase_rates("constant", 0.1, 0, 5, 5) is None
    whole = schedule.phase_rates("cosine-per-phase", 0.1, 0, 10, 10)
    assert whole[0] == 0.1 and all(a > b > 0 for a, b in zip(whole, whole[1:]))
    assert schedule.cosine(0.1, 10, 10) == pytest.approx(0.0, abs=1e-15)  # 0 after the last step
    assert whole[5] == pytest.approx(0.05)
    chunks = [schedule.phase_rates("cosine-per-phase", 0.1, s, 3 if s < 9 else 1, 10) for s in (0, 3, 6, 9)]
    assert sum(chunks, []) == whole
    with pytest.raises(ValueError):
        schedule.phase_rates("cosine-per-phase", 0.1, 8, 3, 10)


def test_cosine_per_phase_search_anneals_each_phase_and_resumes_exactly(tmp_path):
    config = tiny(lr_schedule="cosine-per-phase", finetune_lr=0.02)
    full = Search(config, tmp_path / "full")
    full.warmup()
    assert full.optimizer.param_groups[0]["lr"] == schedule.cosine(config.lr, 3, 4)  # the warm-up's last step
    full.step()
    assert full.optimizer.param_groups[0]["lr"] == schedule.cosine(0.02, 5, 6)  # the fine-tuning's last step
    expected = full.run()
    cut = Search(config, tmp_path / "cut")
    stop = cut.request_stop
    cut.subscribe(lambda e: stop() if isinstance(e, Checkpoint) else None)
    cut.warmup()
    assert 0 < cut.warmup_done < 4  # stopped inside the warm-up: the schedule must continue where it was
    del cut
    resumed = Search.resume(tmp_path / "cut").run()
    assert resumed["top_k"] == expected["top_k"]
    assert fitness_values(load_history(tmp_path / "cut")) == fitness_values(load_history(tmp_path / "full"))


# --- recency ------------------------------------------------------------------------------------------------------
def row(generation: int, trained: list[str], fitness: dict[str, float], before: float | None = 0.5) -> dict:
    return {"generation": generation, "trained_paths": trained,
            "individuals": [{"genotype": g, "role": "parent", "fitness": f, "fitness_before": before}
                            for g, f in fitness.items()]}


def test_last_trained_position_is_the_last_time_in_the_round():
    assert last_trained({"trained_paths": ["a", "b", "a", "c", "b"]}) == {"a": 0.5, "b": 1.0, "c": 0.75}
    assert last_trained({"trained_paths": []}) == {}


def test_recency_effect_finds_a_favoured_last_trained_member_and_none_where_there_is_none():
    favoured = [row(0, [], {"a": 0.1}),  # generation 0: no fine-tuning round, left out
                row(1, ["a", "b", "c", "d"], {"a": 0.60, "b": 0.61, "c": 0.62, "d": 0.63, "x": 0.9}),
                row(2, ["d", "c", "b", "a"], {"a": 0.73, "b": 0.72, "c": 0.71, "d": 0.70})]
    effect = recency_effect(favoured)
    assert effect["members"] == 8  # "x" was not trained in its round
    assert [g["kendall_tau"] for g in effect["per_generation"]] == pytest.approx([1.0, 1.0])
    # pooled with each generation centred (0.6 vs 0.7 level): strongly positive (pairs of the two generations at the
    # same position are ties, so not exactly 1); without centring, generation 2's higher level would blur it
    assert effect["pooled_fitness"]["kendall_tau"] > 0.9 and effect["pooled_fitness"]["spearman"] > 0.95
    assert effect["pooled_gain"]["n"] == 8
    against = [row(1, ["a", "b", "c", "d"], {"a": 0.63, "b": 0.60, "c": 0.63, "d": 0.60})]
    assert abs(recency_effect(against)["pooled_fitness"]["kendall_tau"]) < 0.5
    no_before = recency_records([row(1, ["a"], {"a": 0.5}, before=None)])
    assert no_before[0]["gain"] is None and no_before[0]["position"] == 1.0
    assert recency_effect([])["pooled_fitness"] == {"n": 0, "kendall_tau": None, "p_value": None, "spearman": None}
