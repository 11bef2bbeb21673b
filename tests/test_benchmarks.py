"""The benchmarks run and print well-formed JSON with the expected keys (tiny sizes; no timing asserts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402

MINE = ["step-ratio", "mixed-op-ratio", "eval-throughput", "quick-search", "ranking", "methods", "gpu",
        "table-search", "notebooks", "eval-precision", "distributed"]
TINY_ARGS = {"ranking": {"seeds": [0]}, "methods": {"seeds": [0, 1]}, "notebooks": {"notebooks": ["01", "03", "06"]}}
EVIDENCE = ("ranking", "methods")
"""Benchmarks that share seed jobs through a runs file (the tests share one, so methods reuses ranking's seed)."""


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread (and OMP_NUM_THREADS=1 for child processes): two threads on a busy 2-core machine
    collapse (10x slower), one thread stays steady, and these tests check layout, not speed."""
    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_layout(out: dict, name: str) -> None:
    assert list(out)[:2] == ["benchmark", "figure"], "the figure comes first"
    assert out["benchmark"] == name
    assert {"name", "value", "unit", "goal", "met"} <= set(out["figure"])
    assert {"inputs", "results", "machine", "wall_s", "notes"} <= set(out)
    machine = out["machine"]
    assert {"cpu", "cpu_count", "torch_threads", "loadavg_before", "loadavg_after", "gpu", "torch"} <= set(machine)
    if machine["gpu"] is None:
        assert "gpu_note" in machine
    json.loads(json.dumps(out, allow_nan=False))  # strict JSON: no NaN or infinity


def test_registry_lists_every_benchmark():
    names = list(benchmarks.available())
    assert names[: len(MINE)] == MINE
    assert ("memory-growth" in names) == (ROOT / "benchmarks" / "memory_growth.py").exists()
    with pytest.raises(KeyError):
        benchmarks.run("no-such-benchmark")


@pytest.fixture(scope="module")
def runs_file(tmp_path_factory):
    return str(tmp_path_factory.mktemp("evidence") / "runs.jsonl")


@pytest.mark.parametrize("name", MINE)
def test_benchmark_runs_tiny(name, runs_file):
    extra = {"runs_file": runs_file} if name in EVIDENCE else {}
    out = benchmarks.run(name, quick=True, tiny=True, **TINY_ARGS.get(name, {}), **extra)
    check_layout(out, name)
    results = out["results"]
    if name == "step-ratio":
        assert out["figure"]["value"] > 0 and results["paths"] and "supernet_step_s" in results
    elif name == "mixed-op-ratio":
        assert {"single_path_step_s", "mixed_weights_step_s", "mixed_first_order_step_s"} <= set(results)
    elif name == "eval-throughput":
        assert results["best_eval_batch_size"] in out["inputs"]["batch_sizes_swept"]
        assert set(results["eval_batch_size_sweep"]) == {str(b) for b in out["inputs"]["batch_sizes_swept"]}
    elif name == "table-search":
        assert set(results["searches_per_minute_median"]) == {"ga", "random"} and out["figure"]["value"] > 0
    elif name == "quick-search":
        assert results["peak_rss_gb"] > 0 and results["evaluations"] > 0 and results["best_genotype"]
    elif name == "ranking":
        summary = results["summary"]
        assert set(summary) == {"top", "region", "random", "fitness_images_tau_b", "bn_batches_tau_b"}
        assert {"A", "FT", "C", "ceiling_tau_b", "FT - C", "FT - A"} <= set(summary["region"])
        assert [row["seed"] for row in results["per_seed"]] == [0]
        assert set(summary["fitness_images_tau_b"]) == {"100", "200"}
    elif name == "methods":
        from benchmarks.evidence import VARIANTS

        assert list(results["by_variant"]) == list(VARIANTS)
        evaluations = {v["evaluations"] for v in results["by_variant"].values()}
        assert len(evaluations) == 1, "every method gets the same number of search evaluations"
        steps = results["by_variant"]
        assert steps["ga + extra warm-up"]["supernet_steps"] == steps["sft-ga"]["supernet_steps"]
        assert steps["ga"]["supernet_steps"] < steps["sft-ga"]["supernet_steps"]
        assert [r["seed"] for r in results["per_seed"]] == [0, 1]
        assert set(results["wilcoxon_holm"]["regret"]) == set(VARIANTS) - {"sft-ga"}
        assert all(0 <= r[v]["regret"] <= 1 for r in results["per_seed"] for v in VARIANTS)
    elif name == "notebooks":
        assert list(results["seconds"]) == ["01_search_space.ipynb", "03_search.ipynb", "06_compare_runs.ipynb"]
        assert results["failed"] == [] and all(s > 0 for s in results["seconds"].values())
        assert out["figure"]["value"] >= sum(results["seconds"].values()) - 0.2
        assert results["runs"]["03_search.ipynb"]["parameters"]["out"] == "search"
    elif name == "eval-precision":
        assert out["inputs"]["paths"] == len(results["fitness"]["fp32"]) == len(results["fitness"]["bf16"]) == 6
        assert results["speed_ratio_fp32_over_bf16"] > 0 and isinstance(results["same_survivors"], bool)
        assert results["max_abs_difference"] >= 0 and 0 <= results["identical"] <= 6
    elif name == "distributed":
        layouts = ["1 process x 2 threads", "2 processes x 1 thread"]
        assert list(results["summary"]) == layouts and out["figure"]["value"] > 0
        assert [run[0]["processes"] for run in results["runs"].values()] == [1, 2]
        assert all(s["per_generation_s"] > 0 and s["evaluations_per_min"] > 0 for s in results["summary"].values())
        assert "PROJECTION" in results["projection"] and [p["devices"] for p in results["projection"]["by_devices"]] \
            == [1, 2]
    elif name == "gpu":
        assert results["projection"]["supernet_steps"] == 26000 + 20 * 520
        assert results["projection"]["evaluations"] == 50 + 20 * 150
        if out["machine"]["gpu"] is None:
            assert results["gpu"] is None and results["gpu_note"]


def test_cli_prints_one_json_object_per_benchmark(capsys, tmp_path):
    out_file = tmp_path / "out.jsonl"
    code = main(["gpu", "step-ratio", "--quick", "--set", "tiny=true", "--set", "steps_per_path=2",
                 "--out", str(out_file)])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [out["benchmark"] for out in lines] == ["gpu", "step-ratio"]
    assert "ignored_settings" not in lines[0] and lines[0]["inputs"]["steps_per_path"] == 2
    assert lines[1]["ignored_settings"] == ["steps_per_path"]  # a setting only gpu takes
    assert len(out_file.read_text().splitlines()) == 2


def test_cli_rejects_unknown_names_and_reports_failures(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["nope"])
    assert exc.value.code == 2
    assert main(["gpu", "--set", "no_such_argument=1"]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["benchmark"] == "gpu" and "error" in out


def test_a_control_from_the_shared_warmup_equals_its_separate_run():
    from benchmarks.evidence import BASE, run_variant
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search

    config = SearchConfig.from_preset("smoke", seed=0, **{**BASE, **common.TINY_SEARCH})
    first = Search(config)
    first.warmup()
    warm = first.state_dict()
    for method in ("sft-ga", "ga"):
        _, shared = run_variant(config.replace(method=method), warm)
        alone = Search(config.replace(method=method)).run()
        assert (shared["best_genotype"], shared["best_fitness"]) == (alone["best_genotype"], alone["best_fitness"])
        assert shared["evaluations"] == alone["evaluations"]


def test_fitness_sweep_varies_fitness_images_and_bn_batches_as_the_engine_measures():
    from benchmarks.ranking import fitness_sweep, sweep_agreement
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search
    from nasviz.train.steps import fitness

    config = SearchConfig.from_preset("smoke", seed=0, device="cpu", **{**common.TINY_SEARCH, "generations": 0,
                                                                        "fitness_images": 96, "bn_batches": 2})
    engine = Search(config)
    engine.warmup()
    genotypes = engine.population.genotypes
    sweep = fitness_sweep(engine, genotypes, fitness_images=[96, 24], bn_batches=[2, 1])
    assert sweep["fitness_images"] == [24, 96] and sweep["bn_batches"] == [1, 2] and sweep["precision"] == "fp32"
    # all 96 fitness images and both BN batches: exactly what the search itself measured
    assert sweep["fitness"]["2"]["96"] == [fitness(engine.supernet, g, engine.calibration, engine.fitness_batches)
                                           for g in genotypes] == engine.population.fitness
    assert all(v * 24 == round(v * 24) for v in sweep["fitness"]["1"]["24"])  # a share of 24 images
    taus = sweep_agreement(sweep, sweep["fitness"]["2"]["96"])
    assert set(taus) == {"1", "2"} and set(taus["1"]) == {"24", "96"}
    with pytest.raises(ValueError, match="fitness_images must lie in 1..96"):
        fitness_sweep(engine, genotypes, fitness_images=[200], bn_batches=[1])


@pytest.mark.slow
def test_notebooks_benchmark_keeps_the_executed_notebooks_and_skips_07_without_its_table(tmp_path, monkeypatch):
    import nbformat

    from benchmarks import notebooks
    from nasviz import table

    assert notebooks.TABLE in table.available()  # the table ships: 07 runs
    keep = tmp_path / "executed"
    out = benchmarks.run("notebooks", quick=True, tiny=True, notebooks=["01", "07"], keep=str(keep))
    assert out["results"]["failed"] == [] and out["inputs"]["kept"] == str(keep)
    nb = nbformat.read(keep / "01_search_space.ipynb", as_version=4)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")  # executed, outputs and all
    assert (keep / "07_ground_truth.ipynb").is_file() and "07_ground_truth.ipynb" in out["results"]["seconds"]

    monkeypatch.setattr(notebooks, "TABLE", "no-such-table")  # where the table is not installed: 07 is skipped
    keep = tmp_path / "without-table"
    out = benchmarks.run("notebooks", quick=True, tiny=True, notebooks=["07"], keep=str(keep))
    assert "not installed" in out["results"]["skipped"]["07_ground_truth.ipynb"]
    assert list(out["results"]["seconds"]) == []
    assert not (keep / "07_ground_truth.ipynb").exists()


def test_busy_processes_spin_during_the_block_and_are_gone_after_it():
    from benchmarks import common

    with common.busy_processes(2) as spinners:
        assert len(spinners) == 2 and all(s.poll() is None for s in spinners)  # running
    assert all(s.returncode is not None for s in spinners)  # stopped and reaped
    with pytest.raises(ValueError, match="busy=-1"):
        with common.busy_processes(-1):
            pass


def test_busy_threads_times_one_thread_and_every_core_idle_and_busy_and_restores_the_thread_count():
    before = torch.get_num_threads()
    out = benchmarks.run("busy-threads", tiny=True, busy=1)
    check_layout(out, "busy-threads")
    cores = out["inputs"]["cores"]
    keys = {f"threads={t} busy={b}" for t in {1, cores} for b in (0, 1)}
    assert set(out["results"]["median_step_s"]) == keys
    assert all(v > 0 for v in out["results"]["median_step_s"].values())
    assert out["figure"]["value"] > 0 and out["results"]["ratio_idle"] > 0
    assert torch.get_num_threads() == before
