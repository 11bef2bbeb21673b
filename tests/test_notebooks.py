"""The notebooks in notebooks/: committed clean (no outputs), parameterized, and each runs headless with papermill
(smoke preset, small knobs) and writes what it promises. Also `python -m nasviz demo`.

Notebook kernels run with OMP_NUM_THREADS=1: on a small shared machine, two torch threads per kernel contend with
every other process and a step can take seconds instead of milliseconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nasviz import notebooks as nv
from nasviz.headless.demo import move_aside
from nasviz.headless.execute import notebook_parameters
from nasviz.runs.rundir import load_history

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
NAMES = [
    "01_search_space.ipynb",
    "02_supernet.ipynb",
    "03_search.ipynb",
    "04_train_from_scratch.ipynb",
    "05_ablation.ipynb",
    "06_compare_runs.ipynb",
    "07_ground_truth.ipynb",
]
TINY = {"warmup_steps": 4, "population": 3, "generations": 1, "finetune_steps": 4, "fitness_images": 64,
        "weight_images": 256, "batch_size": 16, "eval_batch_size": 64, "top_k": 2}
"""Search settings (on top of the smoke preset) for the notebooks whose lesson is not the search itself."""
SCRATCH = {"epochs": 1, "channels": 4, "layers": 3, "train_size": 128, "test_size": 128, "batch_size": 32}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def errors(nb) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def mimetypes(nb) -> set[str]:
    return {m for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for m in o.get("data", {})}


def text_of(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            parts.append(o.get("text", ""))
            parts.append(o.get("data", {}).get("text/html", ""))
    return "\n".join(parts)


# --- the committed notebooks ------------------------------------------------------------------------------------
def test_the_series_is_complete():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_clean_and_parameterized(name):
    nb = read(NOTEBOOKS / name)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell has outputs:\n{cell.source[:200]}"
            assert cell.execution_count is None, f"{name}: a code cell has an execution count"
    params = parameters_cells(nb)
    assert len(params) == 1, f"{name} must have exactly one cell tagged 'parameters'"
    assert nb.cells.index(params[0]) < [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][1]
    declared = notebook_parameters(NOTEBOOKS / name)
    assert {"dataset", "preset", "seed"} <= set(declared), f"{name} parameters: {sorted(declared)}"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    markdown = sum(len(c.source) for c in nb.cells if c.cell_type == "markdown")
    code = [c.source for c in nb.cells if c.cell_type == "code" and c is not params[0]]
    assert markdown > 1000, f"{name}: the narrative is thin"
    assert max(len(src.splitlines()) for src in code) <= 12, f"{name}: a code cell is long; move logic to nasviz"


def test_main_notebook_parameters():
    declared = notebook_parameters(NOTEBOOKS / "03_search.ipynb")
    assert declared == {"dataset": '"fashion-mnist"', "preset": '"quick"', "seed": "0", "method": '"sft-ga"',
                        "overrides": "{}", "out": '"runs/notebook"', "live": "True"}


# --- every notebook, headless -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> Path:
    """Two tiny finished runs (sft-ga and random) made by the CLI, for 04 and 06."""
    import os

    root = tmp_path_factory.mktemp("runs")
    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
    for method in ("sft-ga", "random"):
        subprocess.run([sys.executable, "-m", "nasviz", "search", "--preset", "smoke", "--method", method, "--seed",
                        "0", "--out", str(root / method), "--quiet", *sets],
                       check=True, env={**os.environ, **ONE_THREAD}, timeout=600)
    return root


def run_notebook(name: str, output: Path, parameters: dict) -> nbformat.NotebookNode:
    import papermill as pm

    pm.execute_notebook(str(NOTEBOOKS / name), str(output), parameters=parameters, kernel_name="python3",
                        progress_bar=False, cwd=str(output.parent))
    nb = read(output)
    assert not errors(nb), errors(nb)
    assert "application/vnd.jupyter.widget-view+json" not in mimetypes(nb), "headless runs draw no widgets"
    return nb


@pytest.fixture
def one_thread(monkeypatch):
    for key, value in ONE_THREAD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(nv.HEADLESS_ENV, "1")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_01_search_space(tmp_path, one_thread):
    nb = run_notebook("01_search_space.ipynb", tmp_path / "out.ipynb", {"preset": "smoke", "seed": 3})
    assert "image/svg+xml" in mimetypes(nb)  # DARTS_V2 and the random cell, drawn
    text = text_of(nb)
    assert "1,076,746,950,455,072,400" in text  # the size of the space
    assert "largest output difference, supernet path vs standalone network: 0.00e+00" in text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_02_supernet(tmp_path, one_thread):
    nb = run_notebook("02_supernet.ipynb", tmp_path / "out.ipynb",
                      {"preset": "smoke", "warmup_steps": 8, "overrides": {k: v for k, v in TINY.items()
                                                                           if k != "warmup_steps"}})
    text = text_of(nb)
    assert "8 paths trained" in text and "DARTS_V2" in text
    assert "text/html" in mimetypes(nb) and "application/vnd.plotly.v1+json" in mimetypes(nb)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_03_search_main_notebook(tmp_path, one_thread):
    run_dir = tmp_path / "run"
    nb = run_notebook("03_search.ipynb", tmp_path / "03_search.ipynb",
                      {"preset": "smoke", "seed": 0, "out": str(run_dir), "live": False})
    for name in ("config.json", "history.jsonl", "result.json", "checkpoint.pt", "best_normal.svg",
                 "best_reduce.svg", "report.html"):
        assert (run_dir / name).is_file(), f"{run_dir} lacks {name}: {sorted(p.name for p in run_dir.iterdir())}"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["finished"] and result["preset"] == "smoke" and result["method"] == "sft-ga"
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in history] == [0, 1, 2]
    assert "<svg" in (run_dir / "best_normal.svg").read_text()
    text = text_of(nb)
    assert result["best_genotype"] in text  # the best genotype is printed
    assert "result.json" in text and "report.html" in text
    assert "image/svg+xml" in mimetypes(nb)
    # section 9, exploring the search: the lineage read back, the largest rises and the best network's ancestry
    assert "largest rises across one fine-tuning" in text and "fewest mutations from generation 0: " in text
    assert f"{4 * len(history)} individuals evaluated" in text  # 4 initial, then 4 offspring per generation
    html_figures = sum("Plotly.newPlot" in (o.get("data", {}).get("text/html", ""))
                       for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert html_figures >= 7, "headless, the static figures are drawn (as HTML, for the export)"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_04_train_from_scratch(tmp_path, one_thread, tiny_runs):
    nb = run_notebook("04_train_from_scratch.ipynb", tmp_path / "out.ipynb",
                      {"preset": "smoke", "run_dir": str(tiny_runs / "sft-ga"), "out": str(tmp_path / "scratch"),
                       **SCRATCH})
    results = json.loads((tmp_path / "scratch" / "scratch.json").read_text())
    best = json.loads((tiny_runs / "sft-ga" / "result.json").read_text())["best_genotype"]
    assert list(results) == ["search's best", "random (seed 0)", "DARTS_V2"]
    # three training seeds by default: one result per seed, same genotype and budget, seeds 0, 1, 2
    for runs in results.values():
        assert [r["config"]["seed"] for r in runs] == [0, 1, 2]
        assert len({r["genotype"] for r in runs}) == 1
        assert all(r["config"]["epochs"] == 1 and r["train_images"] == 128 for r in runs)
    assert results["search's best"][0]["genotype"] == best
    assert "application/vnd.plotly.v1+json" in mimetypes(nb)
    figure = next(o["data"]["application/vnd.plotly.v1+json"] for c in nb.cells if c.cell_type == "code"
                  for o in c.outputs if "application/vnd.plotly.v1+json" in o.get("data", {}))
    bars, dots = figure["data"][0], figure["data"][1]
    means = [sum(r["test_accuracy"] for r in runs) / 3 for runs in results.values()]
    assert bars["y"] == pytest.approx(means) and len(bars["error_y"]["array"]) == 3
    assert sorted(dots["y"]) == sorted(r["test_accuracy"] for runs in results.values() for r in runs)
    # it ends by saving the best network and exporting it
    import torch

    from nasviz.deploy.export import onnx_missing, run_exported
    from nasviz.deploy.model_file import load_model

    winner = max(results, key=lambda name: sum(r["test_accuracy"] for r in results[name]))  # best mean
    net = load_model(tmp_path / "scratch" / "model.pt")
    assert net.model_info.genotype == results[winner][0]["genotype"]
    assert net.model_info.info["test_accuracy"] == results[winner][0]["test_accuracy"]  # its first seed's network
    assert net.model_info.info["seed"] == 0
    assert (net.model_info.channels, net.model_info.layers) == (SCRATCH["channels"], SCRATCH["layers"])
    exports = ["model.ts"] + ([] if onnx_missing() else ["model.onnx"])
    x = torch.randn(4, 1, 28, 28)
    with torch.inference_mode():
        expected = net(x)
    for name in exports:
        assert (run_exported(tmp_path / "scratch" / name, x) - expected).abs().max() < 1e-4, name
    assert text_of(nb).count("largest logit difference from PyTorch") == len(exports)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_05_ablation(tmp_path, one_thread):
    out = tmp_path / "ablation"
    nb = run_notebook("05_ablation.ipynb", tmp_path / "out.ipynb",
                      {"preset": "smoke", "overrides": TINY, "variants": ["sft-ga", "random"], "kendall_archs": 4,
                       "scratch": SCRATCH, "out": str(out)})
    for variant, method in (("sft-ga", "sft-ga"), ("random", "random")):
        result = json.loads((out / variant / "result.json").read_text())
        assert result["finished"] and result["method"] == method
    text = text_of(nb)
    assert "Kendall tau, supernet fitness (after fine-tuning) vs accuracy from scratch" in text
    assert "4 architectures from generation 1 of the &#x27;sft-ga&#x27; run" in text or \
        "4 architectures from generation 1 of the 'sft-ga' run" in text
    # section 5: the reference search again under max_params, every network within it, both fronts shown
    limit = json.loads((out / "sft-ga-max-params" / "config.json").read_text())["max_params"]
    assert limit == nv.size_limit(load_history(out / "sft-ga"), 0.5)
    limited = load_history(out / "sft-ga-max-params")
    assert len(limited) == TINY["generations"] + 1
    assert all(i["params"] <= limit for row in limited for i in row["individuals"])
    assert f"max_params={limit:,}: best fitness" in text and "Fronts of fitness vs size" in text
    # section 3b: the committed three-seed methods comparison, as a table and two error-bar figures
    measured = nv.precomputed_methods()
    assert len(measured) == 18 and f"{len(measured)} searches of the methods benchmark" in text
    titles = [o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"] for c in nb.cells
              if c.cell_type == "code" for o in c.outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert sum("mean ± sd over 3 seeds × 2 runs" in t for t in titles) == 2, titles
    # section 6: a profile of the reference run's network, FLOPs vs measured latency, the search under max_latency_ms
    lat_limit = json.loads((out / "sft-ga-max-latency" / "config.json").read_text())["max_latency_ms"]
    fast = load_history(out / "sft-ga-max-latency")
    assert (out / "latency-profile.json").is_file() and len(fast) == TINY["generations"] + 1
    assert all(i["latency_ms"] <= lat_limit for row in fast for i in row["individuals"])
    assert "predicted vs measured: Spearman rho" in text and "Operations by time per FLOP" in text
    assert f"max_latency_ms={lat_limit}: best fitness" in text and "measured end to end" in text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_06_compare_runs(tmp_path, one_thread, tiny_runs):
    nb = run_notebook("06_compare_runs.ipynb", tmp_path / "out.ipynb", {"runs_dir": str(tiny_runs)})
    text = text_of(nb)
    assert f"2 run(s) under {tiny_runs}" in text
    assert "random" in text and "sft-ga" in text
    nb = run_notebook("06_compare_runs.ipynb", tmp_path / "filtered.ipynb",
                      {"runs_dir": str(tiny_runs), "preset": "quick"})
    assert f"0 run(s) under {tiny_runs}" in text_of(nb)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_07_ground_truth(tmp_path, one_thread):
    from table_support import synthetic_table

    table = synthetic_table(tmp_path / "synthetic.json.gz")
    out = tmp_path / "gt"
    nb = run_notebook("07_ground_truth.ipynb", tmp_path / "out.ipynb",
                      {"table_name": str(table), "preset": "smoke", "overrides": TINY, "ranking_sample": 6,
                       "table_searches": 5, "out": str(out)})
    result = json.loads((out / "result.json").read_text())
    assert result["finished"] and result["truth"]["table"] == "synthetic"
    text = text_of(nb)
    assert "synthetic: 648 networks of the mini space" in text
    assert "genotypes: 768, different networks: 648" in text
    assert "supernet vs table, Kendall τ-b:" in text
    assert "5 searches per method, 70 evaluations each" in text
    assert "The search returned a network at the" in text and "percentile of the space" in text  # in words
    assert "the supernet's noise as a yardstick:" in text  # 5b: the same comparison with the supernet's noise
    assert "5 searches per method, fitness = table + noise of sd" in text
    assert "6 random architectures scored four ways" in text and "snip" in text and "synflow" in text
    assert "3 candidates, 20 training steps each" in text and "after retraining: percentile" in text


def test_compare_helpers_without_runs(tmp_path, capsys):
    assert nv.find_runs(tmp_path / "missing") == []
    assert "is not a folder (yet)" in capsys.readouterr().out
    assert nv.select_runs([], preset="smoke") == []
    assert len(nv.compare_figure([]).data) == 0


def test_compare_figure_colours_runs_by_method_and_dashes_them_by_seed():
    runs = [{"name": f"seed={seed},method={method}", "config": {"method": method, "seed": seed, "preset": "smoke"},
             "rows": [{"generation": 0, "best": {"fitness": 0.5}, "mean_fitness": 0.4}]}
            for method in ("sft-ga", "random") for seed in (0, 1, 2)]
    best = nv.compare_figure(runs).data[::2]  # the left panel: one trace per run
    by_method = {m: {t.line.color for t in best if f"method={m}" in t.name} for m in ("sft-ga", "random")}
    assert all(len(colours) == 1 for colours in by_method.values()) and by_method["sft-ga"] != by_method["random"]
    by_seed = {s: {t.line.dash for t in best if t.name.startswith(f"seed={s},")} for s in (0, 1, 2)}
    assert all(len(dashes) == 1 for dashes in by_seed.values()) and len(set.union(*by_seed.values())) == 3


def test_fitness_images_axis_labels_the_measured_sizes():
    fig = nv.fitness_images_figure({"fitness_images": {"250": [0.1, 0.2], "500": [0.2], "1000": [0.3], "2000": [0.3]}})
    assert list(fig.layout.xaxis.tickvals) == [250, 500, 1000, 2000]
    assert list(fig.layout.xaxis.ticktext) == ["250", "500", "1,000", "2,000"]


# --- python -m nasviz demo --------------------------------------------------------------------------------------
def demo(out: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    sets = [arg for k, v in TINY.items() for arg in ("--set", f"{k}={v}")]
    return subprocess.run([sys.executable, "-m", "nasviz", "demo", "--preset", "smoke", "--out", str(out), *sets,
                           *args], capture_output=True, text=True, env={**os.environ, **ONE_THREAD}, timeout=600)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_writes_notebook_html_and_run_files(tmp_path):
    out = tmp_path / "demo"
    proc = demo(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("03_search.ipynb", "03_search.html", "run/result.json", "run/history.jsonl", "run/checkpoint.pt",
                 "run/config.json", "run/best_normal.svg", "run/report.html"):
        assert (out / name).is_file(), f"{out} lacks {name}"
    nb = read(out / "03_search.ipynb")
    assert not errors(nb)
    assert nb.metadata.papermill.parameters["live"] is False
    assert nb.metadata.papermill.parameters["overrides"]["population"] == 3
    page = (out / "03_search.html").read_text()
    assert "Plotly.newPlot" in page and "<svg" in page  # figures and cells survive the export
    assert "demo finished" in proc.stdout and "generation 1 (1/1)" in proc.stdout


def test_demo_moves_earlier_results_aside(tmp_path):
    out = tmp_path / "demo"
    (out / "run").mkdir(parents=True)
    (out / "run" / "result.json").write_text("{}")
    (out / "03_search.html").write_text("old")
    moved = move_aside(out)
    assert moved is not None and moved.parent == out and moved.name.startswith("previous-")
    assert (moved / "run" / "result.json").is_file() and (moved / "03_search.html").read_text() == "old"
    assert not (out / "run").exists()
    assert move_aside(out) is None  # nothing left to move


@pytest.mark.parametrize("args, message", [
    (["--preset", "quik"], "unknown preset 'quik' (did you mean 'quick'?)"),
    (["--dataset", "fashion"], "unknown dataset 'fashion'"),
    (["--set", "populaton=3"], "unknown setting 'populaton' (did you mean 'population'?)"),
    (["--set", "seed=3"], "use --seed"),
    (["--notebook", "missing.ipynb"], "notebook 'missing.ipynb' does not exist"),
])
def test_demo_refuses_bad_arguments_in_one_line(tmp_path, capsys, args, message):
    from nasviz.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "demo").exists()


def _run(name: str, preset: str, finished: bool, dataset: str = "fashion-mnist") -> dict:
    return {"name": name, "config": {"preset": preset, "dataset": dataset}, "parameters": {}, "rows": [],
            "result": {"finished": finished, "preset": preset, "dataset": dataset}}


def test_comparable_runs_leave_out_unfinished_and_other_presets_with_a_warning(capsys):
    runs = [_run("a", "smoke", True), _run("b", "smoke", True), _run("c", "quick", True), _run("d", "smoke", False)]
    kept = nv.comparable_runs(runs)
    out = capsys.readouterr().out
    assert [r["name"] for r in kept] == ["a", "b"]
    assert "left out 1 unfinished run(s) (d)" in out
    assert "mix presets or datasets" in out and "'smoke'" in out and "quick on fashion-mnist" in out
    assert [r["name"] for r in nv.comparable_runs(runs, finished_only=False)] == ["a", "b", "d"]
    assert nv.comparable_runs([_run("a", "smoke", True)]) == [_run("a", "smoke", True)]
    assert capsys.readouterr().out.count("warning") == 1  # finished_only=False: only the preset warning


def test_result_summary_says_where_a_search_stopped():
    base = {"supernet_steps": {"warmup": 20, "total": 32}, "search_wall_time_s": 3.2, "evaluations": 16,
            "generations": 4, "generation": 1, "best_fitness": 0.31}
    assert nv.result_summary({**base, "finished": True}).startswith("best fitness 0.3100 after 1 generations")
    assert "stopped after generation 1 of 4 (not finished)" in nv.result_summary({**base, "finished": False})
    warm = nv.result_summary({**base, "finished": False, "best_fitness": None})
    assert warm.startswith("stopped during the warm-up after 20 supernet steps: no population yet")


# --- comparisons over seeds (04, 05, 06) ----------------------------------------------------------------------------
def _seeded_run(name: str, method: str, seed: int, fitness: float, truth: float | None) -> dict:
    result = {"finished": True, "preset": "smoke", "dataset": "fashion-mnist"}
    if truth is not None:
        result["truth"] = {"best_accuracy": truth, "table": "synthetic"}
    return {"name": name, "config": {"method": method, "seed": seed, "preset": "smoke", "dataset": "fashion-mnist"},
            "parameters": {}, "rows": [{"best": {"fitness": fitness}}], "result": result}


def test_final_best_figure_shows_mean_sd_and_every_run_per_group():
    runs = [_seeded_run(f"seed={s},method={m}", m, s, f, t) for m, values in
            (("sft-ga", [(0.70, 0.80), (0.74, 0.82), (0.72, 0.81)]), ("random", [(0.50, 0.79), (0.56, 0.83)]))
            for s, (f, t) in enumerate(values)]
    fig = nv.final_best_figure(runs)
    bars, dots = fig.data
    assert list(bars.x) == ["sft-ga", "random"]
    assert list(bars.y) == pytest.approx([0.72, 0.53])
    assert list(bars.error_y.array) == pytest.approx([0.02, 0.0424264], abs=1e-6)  # sample sd over the seeds
    assert sorted(dots.y) == sorted([0.70, 0.74, 0.72, 0.50, 0.56]) and "seed=1,method=random" in dots.text
    assert fig.layout.yaxis.range[0] == 0
    assert nv.has_truth(runs)
    truth = nv.final_values(runs, value="truth")
    assert truth == {"sft-ga": [("seed=0,method=sft-ga", 0.80), ("seed=1,method=sft-ga", 0.82),
                                ("seed=2,method=sft-ga", 0.81)],
                     "random": [("seed=0,method=random", 0.79), ("seed=1,method=random", 0.83)]}
    table = nv.final_best_table(runs, value="truth").data
    assert "0.8100 ± 0.0100" in table and "0.8100 ± 0.0283" in table
    no_truth = [_seeded_run("a", "ga", 0, 0.5, None)]
    assert not nv.has_truth(no_truth) and nv.final_values(no_truth, value="truth") == {}
    with pytest.raises(ValueError, match="value='accuracy' is not allowed; allowed: fitness, truth"):
        nv.final_values(runs, value="accuracy")


def test_spread_of_one_value_has_no_sd_and_no_error_bar():
    assert nv.spread([0.5]) == {"n": 1, "mean": 0.5, "sd": None, "min": 0.5, "max": 0.5}
    fig = nv.spread_figure({"a": [0.5], "b": [("seed 0", 0.6), ("seed 1", 0.8)]}, "t", "accuracy")
    assert list(fig.data[0].error_y.array) == pytest.approx([0.0, 0.1414214], abs=1e-6)
    with pytest.raises(ValueError):
        nv.spread([])


@pytest.mark.parametrize("value", [[], [0, 0], [-1], ["a"], [0.5], list(range(21)), "x"])
def test_seeds_parameter_is_checked_in_one_line(value):
    from nasviz.errors import ConfigError

    with pytest.raises(ConfigError, match=r"allowed: 1 to 20 distinct seeds|allowed: a non-empty list") as err:
        nv.as_seeds("seeds", value)
    assert "seeds=" in str(err.value) and "\n" not in str(err.value)


def test_seeds_parameter_accepts_lists_and_papermill_text():
    assert nv.as_seeds("seeds", [0, 1, 2]) == [0, 1, 2]
    assert nv.as_seeds("seeds", "[3, 4]") == [3, 4] and nv.as_seeds("seeds", "5,6") == [5, 6]


def test_latency_runtime_parameter_defaults_by_preset_and_is_checked_in_one_line():
    from nasviz.errors import ConfigError

    assert nv.as_runtime("latency_runtime", None, "smoke") == "torch"  # seconds: no export
    assert nv.as_runtime("latency_runtime", None, "class") == "onnxruntime"  # what nasviz export deploys
    assert nv.as_runtime("latency_runtime", None, "quick") == "onnxruntime"
    assert nv.as_runtime("latency_runtime", "Torch", "quick") == "torch"
    with pytest.raises(ConfigError, match=r"latency_runtime='tensorrt': unknown runtime .*allowed: onnxruntime, torch"):
        nv.as_runtime("latency_runtime", "tensorrt", "class")


def test_precomputed_methods_comparison_matches_the_benchmark_report():
    rows = nv.precomputed_methods()
    assert len(rows) == 18 and {r["method"] for r in rows} == {"sft-ga", "ga", "random"}
    accuracy = {m: nv.spread([v for _k, v in values]) for m, values in nv.by_method(rows, "test_accuracy").items()}
    # docs/benchmarks.md, methods, both runs pooled (6): 0.7972 ± 0.0145, 0.8012 ± 0.0166, 0.7992 ± 0.0098
    assert (round(accuracy["sft-ga"]["mean"], 4), round(accuracy["sft-ga"]["sd"], 4)) == (0.7972, 0.0145)
    assert (round(accuracy["ga"]["mean"], 4), round(accuracy["ga"]["sd"], 4)) == (0.8012, 0.0166)
    assert (round(accuracy["random"]["mean"], 4), round(accuracy["random"]["sd"], 4)) == (0.7992, 0.0098)
    table = nv.methods_table(rows).data
    assert "0.7972 ± 0.0145" in table and "4 / 2" in table  # sft-ga vs ga: 1/2 in run 1, 3/0 in run 2
    assert nv.precomputed_methods(REPO / "missing") == []


# --- docs/screenshots ---------------------------------------------------------------------------------------------
def _screenshot_script():
    import importlib.util

    path = REPO / "docs" / "screenshots" / "make_screenshots.py"
    spec = importlib.util.spec_from_file_location("make_screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_has_a_screenshot_focus_that_exists():
    shots = _screenshot_script()
    assert list(shots.FOCUS) == NAMES
    for name, cell_id in shots.FOCUS.items():
        assert cell_id in [c.get("id") for c in read(NOTEBOOKS / name).cells], f"{name} has no cell {cell_id!r}"


def test_committed_screenshots_are_small_pngs_linked_from_the_teachers_guide():
    guide = (REPO / "docs" / "teaching.md").read_text()
    for name in NAMES:
        png = REPO / "docs" / "screenshots" / name.replace(".ipynb", ".png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png.stat().st_size < 300_000, f"{png} is {png.stat().st_size:,} bytes"
        assert f"screenshots/{png.name}" in guide, f"docs/teaching.md does not link {png.name}"
