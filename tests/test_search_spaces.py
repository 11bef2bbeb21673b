"""Searches in the mini space, ground truth in the run files, and searches whose fitness is the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from table_support import synthetic_table

from nasviz.errors import ConfigError, NasvizError
from nasviz.runs.rundir import load_history
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import MINI
from nasviz.table import ground_truth

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(warmup_steps=4, population=3, generations=2, finetune_steps=6, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2)


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> Path:
    """A synthetic ground-truth table of every mini network (made-up accuracies: for testing the plumbing)."""
    return synthetic_table(tmp_path_factory.mktemp("table") / "synthetic.json.gz")


def mini(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", space="mini", **{**TINY, **overrides})


def test_choosing_mini_sets_the_table_layout_unless_given():
    c = SearchConfig.from_preset("quick", space="mini")
    assert (c.space, c.image_size, c.layers, c.channels) == ("mini", 14, 3, 8)
    assert SearchConfig.from_preset("quick", space="mini", layers=5, image_size=28).layers == 5
    d = SearchConfig.from_preset("quick")
    assert (d.space, d.image_size, d.fitness) == ("darts", None, "supernet")


@pytest.mark.parametrize("overrides,fragments", [
    (dict(space="minnie"), ["unknown space 'minnie'", "did you mean 'mini'", "allowed: darts, mini"]),
    (dict(fitness="tabel"), ["unknown fitness 'tabel'", "allowed: supernet, table"]),
    (dict(fitness="table"), ["needs a ground-truth table", "space='darts'"]),
    (dict(table_noise=0.01), ["table_noise=0.01 needs fitness='table'"]),
    (dict(image_size=2), ["image_size=2 is out of range", "4..1024"]),
])
def test_bad_space_settings_are_one_line_errors(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        SearchConfig.from_preset("smoke", **overrides)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_table_of_another_space_or_dataset_is_refused(table_file):
    with pytest.raises(NasvizError, match="is for space='mini'"):
        SearchConfig.from_preset("smoke", table=str(table_file))  # a darts search
    with pytest.raises(NasvizError, match="is for space='mini' on 'fashion-mnist', not space='mini' on 'mnist'"):
        SearchConfig.from_preset("smoke", space="mini", dataset="mnist", table=str(table_file))


def test_supernet_search_in_mini_records_the_truth(tmp_path, table_file):
    search = Search(mini(table=str(table_file)), tmp_path / "run")
    assert search.data.shape == (1, 14, 14) and search.supernet.space is MINI
    result = search.run()
    table = ground_truth("mini", "fashion-mnist", str(table_file))
    rows = load_history(tmp_path / "run")
    for row in rows:
        for individual in row["individuals"]:
            g = MINI.parse(individual["genotype"])  # every individual is in the space (tied cells, 2 nodes)
            assert individual["truth"] == {"accuracy": round(table.accuracy(g), 6),
                                           "percentile": round(table.percentile(g), 2)}
        assert row["best"]["truth"]["accuracy"] == table.accuracy(row["best"]["genotype"])
    truth = result["truth"]
    assert truth["table"] == "synthetic" and truth["used_by_search"] is False
    assert truth["best_accuracy"] == table.accuracy(result["best_genotype"])
    assert truth["best_regret"] == pytest.approx(table.best().accuracy - truth["best_accuracy"])
    evaluated = {MINI.key(MINI.parse(i["genotype"])) for r in rows for i in r["individuals"]}
    assert truth["best_evaluated_accuracy"] == max(table.accuracy(k) for k in evaluated)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["truth"] == truth


def test_darts_runs_carry_no_truth(tmp_path):
    result = Search(SearchConfig.from_preset("smoke", **TINY), tmp_path / "d").run()
    assert "truth" not in result
    assert all("truth" not in i for r in load_history(tmp_path / "d") for i in r["individuals"])


def test_mini_search_is_deterministic_and_resumes_exactly(tmp_path, table_file):
    config = mini(table=str(table_file))
    full = Search(config, tmp_path / "full").run()
    again = Search(config, tmp_path / "again").run()
    assert full["top_k"] == again["top_k"]
    cut = Search(config, tmp_path / "cut")
    cut.step()
    cut.step()
    del cut
    resumed = Search.resume(tmp_path / "cut").run()
    assert resumed["top_k"] == full["top_k"] and resumed["truth"] == full["truth"]
    assert [r["individuals"] for r in load_history(tmp_path / "cut")] == \
        [r["individuals"] for r in load_history(tmp_path / "full")]


@pytest.mark.parametrize("method", ["ga", "random", "sft-ga"])
def test_table_fitness_searches_need_no_training(method, table_file):
    config = SearchConfig.from_preset("quick", space="mini", fitness="table", table=str(table_file), method=method)
    search = Search(config)
    assert search.supernet is None and search.data is None
    result = search.run()
    table = ground_truth("mini", "fashion-mnist", str(table_file))
    assert result["supernet_steps"]["total"] == 0 and result["evaluations"] == config.evaluation_budget
    assert result["best_fitness"] == table.accuracy(result["best_genotype"])
    assert result["truth"]["used_by_search"] is True
    assert Search(config).run()["top_k"] == result["top_k"]  # same seed, same search
    assert Search(config.replace(seed=1)).run()["top_k"] != result["top_k"]


def test_table_noise_is_seeded_and_resumes(tmp_path, table_file):
    config = SearchConfig.from_preset("quick", space="mini", fitness="table", table=str(table_file),
                                      table_noise=0.02, generations=3)
    a = Search(config, tmp_path / "a").run()
    assert a["top_k"] == Search(config).run()["top_k"]
    table = ground_truth("mini", "fashion-mnist", str(table_file))
    assert a["best_fitness"] != table.accuracy(a["best_genotype"])  # noisy lookups
    cut = Search(config, tmp_path / "cut")
    cut.step()
    cut.step()
    del cut
    assert Search.resume(tmp_path / "cut").run()["top_k"] == a["top_k"]


def test_cli_search_in_mini(tmp_path, table_file):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "nasviz", "search", "--preset", "smoke", "--set", "space=mini", "--set",
         f"table={table_file}", "--set", "fitness=table", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["truth"]["used_by_search"] is True and MINI.parse(result["best_genotype"])


def test_reports_of_mini_runs_show_the_truth(tmp_path, table_file):
    from nasviz.viz.figures import FIGURES, all_figures
    from nasviz.viz.report import write_report
    from nasviz.viz.truth import fitness_vs_truth_figure

    Search(mini(table=str(table_file)), tmp_path / "run").run()
    rows = load_history(tmp_path / "run")
    figures = all_figures(rows)
    assert set(figures) == set(FIGURES) | {"fitness_vs_truth", "pick_percentile"}
    scatter = fitness_vs_truth_figure(rows).data[0]
    last = rows[-1]["individuals"]
    assert list(scatter.y) == [i["truth"]["accuracy"] for i in last]
    assert list(scatter.x) == [i["fitness"] for i in last]
    picks = figures["pick_percentile"].data[0]
    assert list(picks.y) == [r["best"]["truth"]["percentile"] for r in rows]
    names = {p.name for p in write_report(tmp_path / "run")}
    assert {"fitness_vs_truth.html", "pick_percentile.html"} <= names
    darts = load_history(tmp_path / "run")  # a darts run gets no truth figures
    for row in darts:
        for i in row["individuals"]:
            i.pop("truth")
    assert set(all_figures(darts)) == set(FIGURES)


def test_figures_and_cell_drawings_follow_the_space(tmp_path, table_file):
    from nasviz.viz.cells import cell_dot, cell_figure
    from nasviz.viz.figures import op_frequency_figure, trace

    g = MINI.sample(__import__("random").Random(0))
    dot = cell_dot(g, "normal")
    assert dot.count(' -> "') == 2 * 2 + 2  # 4 operation edges, then 2 nodes into the output
    nodes = trace(cell_figure(g, "normal"), "nodes")
    assert len(nodes.x) == 2 + 2 + 1  # two inputs, two nodes, the output
    Search(mini(table=str(table_file)), tmp_path / "run").run()
    fig = op_frequency_figure(load_history(tmp_path / "run"))
    warm = trace(fig, "warm-up")
    assert list(warm.x) == list(MINI.ops) and len(warm.y) == 2 * MINI.nodes
    assert all(abs(sum(row) - 1) < 1e-9 for row in warm.z)  # each node's edges: one op each, in the space
    assert "1/4" in fig.layout.title.text
