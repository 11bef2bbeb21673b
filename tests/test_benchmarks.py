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
        "table-search", "notebooks"]
TINY_ARGS = {"methods": {"seeds": [0]}, "notebooks": {"notebooks": ["01", "03", "06"]}}


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


@pytest.mark.parametrize("name", MINE)
def test_benchmark_runs_tiny(name):
    out = benchmarks.run(name, quick=True, tiny=True, **TINY_ARGS.get(name, {}))
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
        assert set(results["kendall_tau"]) == {"finetuned", "warmup_only", "uniform_extra"}
        assert len(results["architectures"]) == 4
        assert {"region", "random"} == {a["source"] for a in results["architectures"]}
    elif name == "methods":
        assert set(results["by_method"]) == {"sft-ga", "ga", "random"}
        assert len(results["runs"]) == 3 and set(results["paired"]) == {"sft-ga minus ga", "sft-ga minus random"}
    elif name == "notebooks":
        assert list(results["seconds"]) == ["01_search_space.ipynb", "03_search.ipynb", "06_compare_runs.ipynb"]
        assert results["failed"] == [] and all(s > 0 for s in results["seconds"].values())
        assert out["figure"]["value"] >= sum(results["seconds"].values()) - 0.2
        assert results["runs"]["03_search.ipynb"]["parameters"]["out"] == "search"
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


def test_shared_warmup_equals_separate_runs():
    from benchmarks.methods import shared_warmup_runs
    from nasviz.config import SearchConfig
    from nasviz.search import Search

    config = SearchConfig.from_preset("smoke", seed=0, device="cpu", **common.TINY_SEARCH)
    shared = shared_warmup_runs(config, ("sft-ga", "ga"))
    for method, (_, result) in shared.items():
        alone = Search(config.replace(method=method)).run()
        assert (result["best_genotype"], result["best_fitness"]) == (alone["best_genotype"], alone["best_fitness"])
        assert result["evaluations"] == alone["evaluations"]


@pytest.mark.slow
def test_notebooks_benchmark_keeps_the_executed_notebooks_and_skips_07_without_its_table(tmp_path):
    import nbformat

    from benchmarks.notebooks import TABLE
    from nasviz import table

    keep = tmp_path / "executed"
    out = benchmarks.run("notebooks", quick=True, tiny=True, notebooks=["01", "07"], keep=str(keep))
    assert out["results"]["failed"] == [] and out["inputs"]["kept"] == str(keep)
    nb = nbformat.read(keep / "01_search_space.ipynb", as_version=4)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")  # executed, outputs and all
    if TABLE in table.available():
        assert (keep / "07_ground_truth.ipynb").is_file() and "07_ground_truth.ipynb" in out["results"]["seconds"]
    else:
        assert "not installed" in out["results"]["skipped"]["07_ground_truth.ipynb"]
        assert list(out["results"]["seconds"]) == ["01_search_space.ipynb"]
        assert not (keep / "07_ground_truth.ipynb").exists()
