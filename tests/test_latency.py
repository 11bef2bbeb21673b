"""Latency: profiles of a layout's pieces, predictions that are sums of them, validation against whole networks,
and searches that keep within `max_latency_ms` or trade fitness against predicted latency."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from latency_support import damage, hand_built, write
from table_support import synthetic_table

from nasviz.errors import ConfigError
from nasviz.latency import Layout, fastest, load_profile, make_profile, predict
from nasviz.latency.layout import CellShape, build_supernet, cell_shapes
from nasviz.latency.profile import needed_ops
from nasviz.latency.validation import validate
from nasviz.runs.rundir import load_history, load_result
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import DARTS, MINI, Genotype

ROOT = Path(__file__).resolve().parents[1]
MINI_TINY = Layout("mini", 1, 8, 8, 10, 4, 3)
"""A mini network on 8x8 images: three cells (the last two reduce), seconds to profile."""
SMOKE = Layout("darts", 1, 28, 28, 10, 4, 3)
"""The smoke preset's search network on fashion-mnist."""
MINI_TABLE = Layout("mini", 1, 14, 14, 10, 8, 3)
"""The quick preset's search network in the mini space (the ground-truth table's layout)."""


# --- profile --------------------------------------------------------------------------------------------------
def test_a_profile_of_a_tiny_shape_set_times_every_piece_and_reads_back(tmp_path):
    prof = make_profile(MINI_TINY, "torch", threads=1, batch=2, warmup=1, repeats=3)
    cells = cell_shapes(build_supernet(MINI_TINY), MINI_TINY)[0]
    assert cells == [CellShape(False, 4, 8, 8), CellShape(True, 8, 8, 8), CellShape(True, 16, 4, 4)]
    assert set(prof.ops) == set(needed_ops("mini", cells))
    assert "sep_conv_3x3@8x8x8/s2" in prof.ops and "dil_conv_3x3@16x2x2/s1" in prof.ops
    assert not any(k.startswith("skip_connect") and k.endswith("/s1") for k in prof.ops)  # the identity is free
    assert set(prof.fixed) == {"stem", "head", *(f"cell{i}.{p}" for i in range(3)
                                                  for p in ("preprocess0", "preprocess1", "combine"))}
    for e in [*prof.ops.values(), *prof.fixed.values()]:
        assert math.isfinite(e["ms"]) and e["spread_ms"] >= 0 and e["samples"] == 3
        assert e["min_ms"] <= e["median_ms"] and e["ms"] == e["median_ms"] - e["empty_median_ms"]
    assert prof.machine["cpu"] and prof.machine["threads"] == 1 and prof.machine["runtime"] == "torch"
    assert prof.machine["versions"]["torch"] and prof.batch == 2 and prof.timing["repeats"] == 3
    back = load_profile(write(prof, tmp_path / "p.json"), MINI_TINY)
    assert back.to_dict() == prof.to_dict()
    g = MINI.sample(random.Random(0))
    assert predict(g, back) == predict(g, prof)


def test_an_onnxruntime_profile_times_the_exported_pieces():
    prof = make_profile(Layout("mini", 1, 8, 8, 10, 2, 1), "onnxruntime", warmup=1, repeats=2,
                        only_ops=("max_pool_3x3",))
    assert set(prof.ops) == {"max_pool_3x3@4x8x8/s2", "max_pool_3x3@4x4x4/s1"}
    assert prof.machine["runtime"] == "onnxruntime" and prof.machine["versions"]["onnxruntime"]
    assert prof.overhead_ms > 0


def test_predictions_add_up_exactly_for_a_hand_built_profile():
    powers = {key: 2.0 ** -k for k, key in enumerate(needed_ops("mini", hand_built(MINI_TINY).cells))}
    prof = hand_built(MINI_TINY, op_ms=powers.__getitem__, fixed_ms=2.0 ** 5, overhead_ms=2.0 ** 6)
    g = Genotype(normal=(("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("dil_conv_3x3", 2)),
                 reduce=(("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("dil_conv_3x3", 2)))
    edges = ["sep_conv_3x3@4x8x8/s1", "max_pool_3x3@4x8x8/s1", "dil_conv_3x3@4x8x8/s1",  # cell 0: normal
             "sep_conv_3x3@8x8x8/s2", "skip_connect@8x8x8/s2", "max_pool_3x3@8x8x8/s2",  # cell 1 reduces 8x8
             "dil_conv_3x3@8x4x4/s1",  # ... its node 1 reads node 0, at half resolution
             "sep_conv_3x3@16x4x4/s2", "skip_connect@16x4x4/s2", "max_pool_3x3@16x4x4/s2", "dil_conv_3x3@16x2x2/s1"]
    assert predict(g, prof) == 2.0 ** 6 + 11 * 2.0 ** 5 + sum(powers[k] for k in edges)


def test_the_fastest_network_is_the_least_prediction_of_the_whole_space():
    prof = hand_built(MINI_TINY)
    assert fastest(prof) == pytest.approx(min(predict(g, prof) for g in MINI.enumerate()), rel=1e-12)
    darts = hand_built(SMOKE)
    rng = random.Random(0)
    assert all(fastest(darts) <= predict(DARTS.sample(rng), darts) for _ in range(200))


# --- validate -------------------------------------------------------------------------------------------------
def test_validation_measures_random_networks_and_compares_predictions_and_flops():
    prof = make_profile(MINI_TINY, "torch", warmup=1, repeats=3)
    report = validate(prof, n=3, seed=1, warmup=1, repeats=3)
    rows = report["networks"]
    assert report["networks_measured"] == 3 == len({r["genotype"] for r in rows})
    for r in rows:
        assert r["measured_ms"] > 0 and r["flops"] > 0 and r["params"] > 0
        assert r["predicted_ms"] == pytest.approx(predict(Genotype.parse(r["genotype"]), prof))
    errors = [abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    assert report["mape_percent"] == pytest.approx(100 * sum(errors) / 3)
    assert -1 <= report["spearman_rho"] <= 1 and -1 <= report["flops_spearman_rho"] <= 1
    with pytest.raises(ConfigError, match=r"^n=2 is out of range"):
        validate(prof, n=2)


# --- unusable profiles ----------------------------------------------------------------------------------------
def one_line_error(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_a_latency_setting_without_a_profile_names_the_command_that_makes_one(tmp_path):
    with pytest.raises(ConfigError) as caught:
        SearchConfig.from_preset("smoke", max_latency_ms=5)
    assert one_line_error(caught).startswith("max_latency_ms=5.0 needs latency_profile=FILE") and \
        "python -m nasviz latency profile" in str(caught.value)
    with pytest.raises(ConfigError, match=r"^pareto_size='latency' needs latency_profile"):
        SearchConfig.from_preset("smoke", objective="pareto", pareto_size="latency")
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        SearchConfig.from_preset("smoke", max_latency_ms=5, latency_profile=str(missing))
    assert one_line_error(caught).startswith(f"latency_profile={str(missing)!r} does not exist; make one with: "
                                             "python -m nasviz latency profile")
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "nasviz", "search", "--preset", "smoke", "--set", "max_latency_ms=5",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "needs latency_profile=FILE" in proc.stderr and not out.exists()


@pytest.mark.parametrize("how", ["truncated", "other", "missing-op"])
def test_a_damaged_profile_is_refused_in_one_line(tmp_path, how):
    bad = damage(write(hand_built(SMOKE), tmp_path / "p.json"), how)
    with pytest.raises(ConfigError) as caught:
        SearchConfig.from_preset("smoke", latency_profile=str(bad))
    text = one_line_error(caught)
    assert text.startswith(f"latency_profile={str(bad)!r}") and "python -m nasviz latency profile" in text
    assert {"truncated": "cannot be read", "other": "format is not", "missing-op": "no time for"}[how] in text


def test_a_profile_of_another_space_or_layout_is_refused_in_one_line(tmp_path):
    mini = write(hand_built(MINI_TABLE), tmp_path / "mini.json")
    with pytest.raises(ConfigError) as caught:
        SearchConfig.from_preset("smoke", latency_profile=str(mini))
    assert "was made for the mini space, this search uses space='darts'" in one_line_error(caught)
    wide = write(hand_built(Layout("darts", 1, 28, 28, 10, 8, 3)), tmp_path / "wide.json")
    config = SearchConfig.from_preset("smoke", latency_profile=str(wide), max_latency_ms=100)  # space fits
    with pytest.raises(ConfigError) as caught:
        Search(config, tmp_path / "run")
    assert "times another network (space darts, images 1x28x28, 10 classes, channels 8, layers 3) than this one " \
           "(space darts, images 1x28x28, 10 classes, channels 4, layers 3)" in one_line_error(caught)
    assert not (tmp_path / "run").exists()


# --- searching with latency -----------------------------------------------------------------------------------
TINY = dict(warmup_steps=4, population=3, generations=2, finetune_steps=6, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2)


def test_every_individual_of_a_smoke_search_is_within_the_latency_limit(tmp_path):
    prof = hand_built(SMOKE)
    path = write(prof, tmp_path / "smoke.json")
    rng = random.Random(5)
    limit = sorted(predict(DARTS.sample(rng), prof) for _ in range(21))[10]  # admits about half
    config = SearchConfig.from_preset("smoke", **TINY, max_latency_ms=limit, latency_profile=str(path))
    search = Search(config, tmp_path / "run")
    result = search.run()
    individuals = [i for row in load_history(tmp_path / "run") for i in row["individuals"]]
    assert result["finished"] and len({i["genotype"] for i in individuals}) == 9
    for i in individuals:
        assert i["latency_ms"] <= limit and i["latency_ms"] == predict(Genotype.parse(i["genotype"]), prof)
    assert any(s.latency_ms > limit for s in search.sizes.measured.values())  # slower ones were drawn, re-drawn
    latency = load_result(tmp_path / "run")["latency"]
    assert latency["max_latency_ms"] == limit and latency["best_predicted_ms"] <= limit
    assert latency["best_predicted_ms"] == predict(Genotype.parse(result["best_genotype"]), prof)
    assert latency["best_measured"]["measured_ms"] > 0 and latency["best_measured"]["device_matches"]
    assert all(t["latency_ms"] <= limit for t in result["top_k"])


def table_search(table: Path, profile: Path, **overrides) -> SearchConfig:
    return SearchConfig.from_preset("quick", space="mini", fitness="table", table=str(table), table_noise=0.02,
                                    latency_profile=str(profile), **{"population": 8, "generations": 6, **overrides})


def test_a_latency_limit_that_leaves_nothing_is_refused_and_pareto_trades_fitness_for_latency(tmp_path):
    table = synthetic_table(tmp_path / "t.json.gz")
    prof = hand_built(MINI_TABLE)
    path = write(prof, tmp_path / "mini.json")
    least = fastest(prof)
    with pytest.raises(ConfigError, match=rf"^max_latency_ms={least * 0.99} leaves no architecture: the smallest "
                                          r".* has .* ms predicted latency"):
        Search(table_search(table, path, max_latency_ms=least * 0.99), tmp_path / "none")
    result = Search(table_search(table, path, objective="pareto", pareto_size="latency"), tmp_path / "p").run()
    rows = load_history(tmp_path / "p")
    last = [i for i in rows[-1]["individuals"] if i["selected"]]
    front = result["front"]
    assert result["pareto_size"] == "latency" and front
    assert [m["latency_ms"] for m in front] == sorted(m["latency_ms"] for m in front)
    for m in front:
        assert not any(o["fitness"] >= m["fitness"] and o["latency_ms"] <= m["latency_ms"] and
                       (o["fitness"] > m["fitness"] or o["latency_ms"] < m["latency_ms"]) for o in last)
    by_params = Search(table_search(table, path, objective="pareto"), tmp_path / "q").run()
    assert [r["population"] for r in load_history(tmp_path / "q")] != [r["population"] for r in rows]
    assert by_params["pareto_size"] == "params"


def test_info_prints_the_predicted_latency(tmp_path):
    prof = hand_built(SMOKE)
    path = write(prof, tmp_path / "p.json")
    proc = subprocess.run([sys.executable, "-m", "nasviz", "info", "--genotype", "DARTS_V2", "--latency", str(path),
                           "--json"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)["latency"]
    assert out["predicted_ms"] == pytest.approx(predict(Genotype.parse("DARTS_V2"), prof))
    assert out["layout"]["channels"] == 4


def test_the_command_line_profiles_into_the_cache_and_refuses_bad_values_in_one_line(tmp_path):
    env = {"NASVIZ_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "nasviz", "latency", "profile", "--space", "mini", "--image-size", "8",
            "--channels", "2", "--layers", "1", "--runtime", "torch", "--repeats", "2", "--warmup", "1", "--quiet"]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1].removeprefix("profile: "))
    assert path.is_file() and (tmp_path / "cache" / "latency") in path.parents
    assert load_profile(path).layout == Layout("mini", 1, 8, 8, 10, 2, 1)
    bad = subprocess.run([*args[:-1], "--threads", "0"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--threads 0 is out of range" in bad.stderr
    bad = subprocess.run([*args[:7], "--runtime", "tensorrt"], capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env=env)
    assert bad.returncode == 2 and "unknown runtime 'tensorrt'" in bad.stderr and bad.stderr.count("\n") == 1


def test_one_fitted_factor_is_judged_two_fold_and_a_calibrated_copy_multiplies_the_sum():
    from nasviz.latency.validation import calibrated, calibration

    fit = calibration([1.0, 2.0, 3.0, 4.0], [1.25, 2.5, 3.75, 5.0])
    assert fit == {"scale": 1.25, "two_fold_mape_percent": 0.0}
    uneven = calibration([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 1.0, 2.0])  # each half fitted alone misses the other
    assert uneven["scale"] == 1.5 and uneven["two_fold_mape_percent"] == pytest.approx(75.0)  # (.5+.5+1+1)/4
    prof = hand_built(MINI_TINY)
    report = {"calibration": fit, "networks_measured": 4, "spearman_rho": 1.0, "created": "now"}
    g = MINI.sample(random.Random(2))
    assert predict(g, calibrated(prof, report)) == pytest.approx(1.25 * predict(g, prof))
    assert fastest(calibrated(prof, report)) == pytest.approx(1.25 * fastest(prof))


def test_the_fitness_vs_size_figure_can_use_predicted_latency():
    from nasviz.viz.front import front_figure, front_points

    rows = [{"generation": 0, "individuals": [
        {"genotype": "a", "role": "initial", "fitness": 0.5, "params": 9, "latency_ms": 1.0},
        {"genotype": "b", "role": "initial", "fitness": 0.6, "params": 1, "latency_ms": 2.0},
        {"genotype": "c", "role": "initial", "fitness": 0.4, "params": 5, "latency_ms": 3.0}]}]
    assert [p["genotype"] for p in front_points(rows, "latency_ms") if p["front"]] == ["a", "b"]
    assert [p["genotype"] for p in front_points(rows, "params") if p["front"]] == ["b"]
    fig = front_figure(rows, "latency_ms")
    assert "Fitness vs ms" in fig.layout.title.text and "predicted latency" in fig.layout.xaxis.title.text
