"""nasviz.viz: figures from a recorded smoke search, cell drawings (dot and the plotly fallback), the live
dashboard, the replay slider, the report and the render CLI. One smoke search per session feeds them all."""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

from nasviz import cli
from nasviz.analysis import kendall
from nasviz.runs.rundir import load_history, read_jsonl
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import CANDIDATE_OPS, FIXTURES, Genotype
from nasviz.viz import cells, figures, layout, widgets
from nasviz.viz.cli import add_render_command
from nasviz.viz.common import (
    gene_entropy,
    op_counts,
    population_table_html,
    ranks,
)
from nasviz.viz.dashboard import Dashboard
from nasviz.viz.figures import trace
from nasviz.viz.replay import Replay
from nasviz.viz.report import show_static, write_report

EDGE = re.compile(r'"(?P<src>[^"]+)" -> "(?P<dst>[^"]+)"(?: \[(?P<attrs>[^\]]*)\])?;')
LABEL = re.compile(r'label="([^"]*)"')


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A real smoke search (seed 0), run by a Dashboard in its background thread; its events recorded too."""
    run_dir = tmp_path_factory.mktemp("viz") / "run"
    search = Search(SearchConfig.from_preset("smoke", seed=0), run_dir)
    events: list = []
    search.subscribe(events.append)
    dashboard = Dashboard(min_interval=0.0)
    assert dashboard.run(search, background=True) is dashboard
    result = dashboard.wait(timeout=600)
    return SimpleNamespace(run_dir=run_dir, rows=load_history(run_dir), events=events, dashboard=dashboard,
                           result=result)


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """PATH without Graphviz's `dot`."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    widgets._svg.cache_clear()
    yield
    widgets._svg.cache_clear()


def edges_of(dot: str) -> list[tuple[str, str, str | None]]:
    """(source, target, label or None) of every edge statement of DOT text."""
    out = []
    for m in EDGE.finditer(dot):
        label = LABEL.search(m["attrs"] or "")
        out.append((m["src"], m["dst"], label.group(1) if label else None))
    return out


# --- figures ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_an_empty_figure_shows_a_note_and_no_default_axes(name, smoke):
    empty = figures.FIGURES[name]([])
    axes = [k for k in empty.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
    assert axes and all(empty.layout[k].showticklabels is False and not empty.layout[k].title.text for k in axes)
    notes = [a.text for a in empty.layout.annotations]
    assert any(n in (layout.EMPTY_NOTE, "no fine-tuned generation yet") for n in notes), notes
    full = figures.FIGURES[name](smoke.rows)
    assert all(full.layout[k].showticklabels is not False for k in axes if not full.layout[k].matches), name
    assert layout.EMPTY_NOTE not in [a.text for a in full.layout.annotations]


def test_operation_heatmap_is_a_diverging_scale_centred_on_uniform_sampling(smoke):
    fig = figures.op_frequency_figure(smoke.rows)
    freq, diff = fig.layout.coloraxis, fig.layout.coloraxis2
    assert math.isclose((freq.cmin + freq.cmax) / 2, 1 / len(CANDIDATE_OPS))  # white (the middle) = 1/7
    assert math.isclose(diff.cmin, -diff.cmax)  # white = no difference
    # one diverging scale for both, same direction: blue = more than uniform / than warm-up
    assert freq.colorscale == diff.colorscale and freq.colorscale[0][1] != freq.colorscale[-1][1]

def test_the_smoke_search_finished_and_recorded_three_generations(smoke):
    assert smoke.result["finished"]
    assert [r["generation"] for r in smoke.rows] == [0, 1, 2]


def test_fitness_figure_shows_every_individual_best_and_mean(smoke):
    rows = smoke.rows
    fig = figures.fitness_figure(rows)
    assert {t.name for t in fig.data} == {"initial population", "parents", "offspring", "best", "mean of population"}
    assert list(trace(fig, "best").y) == [r["best"]["fitness"] for r in rows]
    assert list(trace(fig, "best").x) == [0, 1, 2]
    assert list(trace(fig, "mean of population").y) == pytest.approx([r["mean_fitness"] for r in rows])
    for name, role in (("initial population", "initial"), ("parents", "parent"), ("offspring", "offspring")):
        expected = sorted(i["fitness"] for r in rows for i in r["individuals"] if i["role"] == role)
        assert sorted(trace(fig, name).y) == expected
    kept = sum(s == "circle" for t in fig.data[:3] for s in t.marker.symbol)
    assert kept == sum(len(r["population"]) for r in rows)
    assert fig.layout.title.text == "Fitness per generation"
    assert fig.layout.xaxis.title.text == "generation" and "fitness" in fig.layout.yaxis.title.text
    assert not fig.layout.shapes
    shaded = figures.fitness_figure(rows, highlight=1).layout.shapes
    assert len(shaded) == 1 and shaded[0].x0 < 1 < shaded[0].x1


def test_parents_offspring_figure(smoke):
    rows = smoke.rows
    fig = figures.parents_offspring_figure(rows)
    later = [r for r in rows if r["generation"] >= 1]
    parents = sorted(i["fitness"] for r in later for i in r["individuals"] if i["role"] == "parent")
    assert sorted(trace(fig, "parents").y) == parents
    survivors = [p + o for p, o in zip(trace(fig, "surviving parents").y, trace(fig, "surviving offspring").y)]
    assert survivors == [len(r["population"]) for r in later]


def test_before_after_figure_pairs_each_individual_and_ranks(smoke):
    rows = smoke.rows
    fig = figures.before_after_figure(rows)  # default: the last generation
    last = rows[-1]
    pairs = sorted((i["fitness_before"], i["fitness"]) for i in last["individuals"] if i["role"] == "offspring")
    t = trace(fig, "offspring")
    assert sorted(zip(t.x, t.y)) == pairs
    assert "generation 2" in fig.layout.title.text and "Kendall" in fig.layout.title.text
    kept_lines = sum(x is None for x in trace(fig, "kept").x)
    assert kept_lines == len(last["population"])
    kept_after = [y for y, x in zip(trace(fig, "kept").y, trace(fig, "kept").x) if x == 1]
    dropped_after = [y for y, x in zip(trace(fig, "discarded").y, trace(fig, "discarded").x) if x == 1]
    assert len(kept_after) == len(last["population"])
    assert sorted(kept_after + dropped_after) == list(range(1, len(last["individuals"]) + 1))
    one = figures.before_after_figure(rows, generation=1)
    assert "generation 1" in one.layout.title.text
    empty = figures.before_after_figure(rows[:1])
    assert empty.layout.annotations[-1].text == "no fine-tuned generation yet"


def test_op_frequency_figure_counts_the_trained_paths(smoke):
    rows = smoke.rows
    fig = figures.op_frequency_figure(rows)
    warm = trace(fig, "warm-up")
    assert list(warm.x) == list(CANDIDATE_OPS) and len(warm.y) == 8
    assert [list(r) for r in warm.customdata] == op_counts(rows[0]["trained_paths"])
    for row in warm.z:
        assert sum(row) == pytest.approx(1.0)
    tune_paths = [p for r in rows[1:] for p in r["trained_paths"]]
    tune = trace(fig, "fine-tuning")
    assert [list(r) for r in tune.customdata] == op_counts(tune_paths)
    diff = trace(fig, "difference").z
    assert diff[0][0] == pytest.approx(tune.z[0][0] - warm.z[0][0])
    only_1 = figures.op_frequency_figure(rows, generation=1)
    assert [list(r) for r in trace(only_1, "fine-tuning").customdata] == op_counts(rows[1]["trained_paths"])
    warm_only = figures.op_frequency_figure(rows[:1])
    assert all(v is None for row in trace(warm_only, "fine-tuning").z for v in row)


def test_training_curves_figure(smoke):
    rows = smoke.rows
    fig = figures.training_curves_figure(rows)
    assert list(trace(fig, "warm-up loss").y) == rows[0]["train_loss"]
    assert list(trace(fig, "warm-up accuracy").y) == rows[0]["train_accuracy"]
    tuned = [v for v in trace(fig, "fine-tuning loss").y if v is not None]
    assert tuned == [v for r in rows[1:] for v in r["train_loss"]]
    steps = list(trace(fig, "loss (moving average)").x)
    assert steps == list(range(1, rows[-1]["supernet_steps"] + 1))
    assert len(fig.layout.shapes) == len(rows) - 1  # one marker per fine-tuning start
    assert fig.layout.xaxis2.title.text == "supernet training step"


def test_diversity_figure(smoke):
    rows = smoke.rows
    fig = figures.diversity_figure(rows)
    distinct = [len({Genotype.parse(t).key() for t in r["population"]}) for r in rows]
    assert list(trace(fig, "distinct genotypes").y) == distinct
    entropy = list(trace(fig, "mean gene entropy").y)
    assert all(0 <= e <= math.log2(len(r["population"])) for e, r in zip(entropy, rows))
    same = dict(rows[0], population=[rows[0]["population"][0]] * 3)
    clone_fig = figures.diversity_figure([same])
    assert list(trace(clone_fig, "distinct genotypes").y) == [1]
    assert list(trace(clone_fig, "mean gene entropy").y) == [0]


def test_fitness_vs_params_figure_and_pareto_front(smoke):
    rows = smoke.rows
    fig = figures.fitness_vs_params_figure(rows)
    assert len(trace(fig, "evaluated").x) == sum(len(r["individuals"]) for r in rows)
    assert list(trace(fig, "last population").y) == rows[-1]["fitness"]
    front = list(zip(trace(fig, "Pareto front").x, trace(fig, "Pareto front").y))
    points = [(i["params"], i["fitness"]) for i in rows[-1]["individuals"]]
    for p, f in front:
        assert not any(q <= p and g > f for q, g in points)
    assert figures.front_line([(10, 0.5), (5, 0.4), (7, 0.3), (20, 0.5), (30, 0.9), (10, 0.5)]) == [
        (5, 0.4), (10, 0.5), (30, 0.9)]


def test_fitness_vs_flops_of_the_last_generation_in_the_figures_and_the_dashboards_final_view(smoke):
    everyone = [i for r in smoke.rows for i in r["individuals"]]
    assert all(isinstance(i["flops"], int) and i["flops"] > 0 for i in everyone)  # the history counts FLOPs
    individuals = smoke.rows[-1]["individuals"]  # one front, of values measured under the same weights
    fig = figures.all_figures(smoke.rows)["fitness_vs_flops"]
    assert sorted(trace(fig, "evaluated").x) == sorted(i["flops"] for i in individuals)
    earlier = [i["flops"] for r in smoke.rows[:-1] for i in r["individuals"]]
    assert sorted(trace(fig, "earlier generations").x) == sorted(earlier)  # faded, never on the front
    assert f"generation {smoke.rows[-1]['generation']}, earlier ones faded" in fig.layout.title.text
    front = list(zip(trace(fig, "non-dominated").x, trace(fig, "non-dominated").y))
    assert front and all(not any(i["flops"] <= x and i["fitness"] > y or i["flops"] < x and i["fitness"] >= y
                                 for i in individuals) for x, y in front)
    final = smoke.dashboard.final.children  # shown once the search is done
    assert len(final) == 1 and smoke.dashboard.final in smoke.dashboard.widget.children
    shown = final[0].children[0]
    assert isinstance(shown, go.FigureWidget) and list(trace(shown, "evaluated").x) == list(trace(fig, "evaluated").x)


def test_every_figure_accepts_no_rows_and_one_row(smoke):
    for rows in ([], smoke.rows[:1]):
        for name, fig in figures.all_figures(rows).items():
            assert isinstance(fig, go.Figure) and fig.data, name
            assert all(t.name for t in fig.data), name
            assert fig.layout.title.text, name


def test_helpers():
    assert ranks([0.2, 0.9, 0.5]) == [3, 1, 2]
    assert kendall([1, 2, 3], [1, 2, 3])[0] == 1 and kendall([1, 2, 3], [3, 2, 1])[0] == -1
    assert math.isnan(kendall([1], [1])[0]) and math.isnan(kendall([1, 2, 3], [5, 5, 5])[0])
    # ties (common among fitness values on a few hundred images): tau-b, not tau-a (which would give 2/3)
    assert kendall([1, 1, 2], [1, 2, 3])[0] == pytest.approx(2 / 6 ** 0.5)
    assert gene_entropy([FIXTURES["DARTS_V2"]] * 4) == 0
    assert gene_entropy([FIXTURES["DARTS_V2"], FIXTURES["PDARTS"]]) > 0


def test_population_table_lists_the_population(smoke):
    row = smoke.rows[-1]
    table = population_table_html(row)
    assert table.count("<tr title=") == len(row["population"])
    assert f"{row['best']['fitness']:.4f}" in table
    assert "sep3" in table or "max3" in table or "dil3" in table or "skip" in table
    # the cell columns wrap between nodes (never inside one), so a narrow dashboard shows the table whole
    first = table.split("<tr title=")[1]
    assert first.count("<td style='padding:2px 6px'><span style='white-space:nowrap'>") == 2, first
    assert first.count("</span> | <span") == 6, first  # four nodes per cell


# --- cells --------------------------------------------------------------------------------------------------
def test_cell_dot_of_darts_v2_has_the_eight_labelled_input_edges():
    g = FIXTURES["DARTS_V2"]
    names = {0: "c_{k-2}", 1: "c_{k-1}"}
    for cell_type in ("normal", "reduce"):
        dot = cells.cell_dot(g, cell_type)
        assert dot.startswith("digraph")
        edges = edges_of(dot)
        labelled = [e for e in edges if e[2] is not None]
        expected = [(names.get(i, str(i - 2)), str(k // 2), op) for k, (op, i) in enumerate(g.cell(cell_type))]
        assert labelled == expected
        assert sorted(e[:2] for e in edges if e[2] is None) == [(str(j), "c_{k}") for j in range(4)]
    normal = [e[2] for e in edges_of(cells.cell_dot(g, "normal")) if e[2]]
    assert normal == ["sep_conv_3x3"] * 5 + ["skip_connect"] * 2 + ["dil_conv_3x3"]


def test_cells_dot_has_both_cells_stacked():
    g = FIXTURES["DARTS_V2"]
    dot = cells.cells_dot(str(g))
    assert "subgraph cluster_normal" in dot and "subgraph cluster_reduce" in dot
    labelled = [e for e in edges_of(dot) if e[2]]
    assert len(labelled) == 16
    assert [e[2] for e in labelled if e[0].startswith("reduce:")] == [op for op, _ in g.reduce]
    with pytest.raises(ValueError, match="cell_type"):
        cells.cell_dot(g, "both")


@pytest.mark.skipif(cells.dot_path() is None, reason="Graphviz's dot is not installed")
def test_render_with_dot(tmp_path):
    g = FIXTURES["DARTS_V2"]
    svg = cells.render(g)
    assert svg.startswith(b"<?xml") or b"<svg" in svg
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg.decode())]
    assert "sep_conv_3x3" in texts and "k-1" in texts and "k-2" in texts  # c with a subscript ...
    assert 'baseline-shift="sub"' in svg.decode() and not any("{" in t for t in texts)  # ... not "c_{k-1}"
    # both cells stacked, normal above reduction: about as wide as the wider cell, not as both side by side
    width = {t: float(re.search(rb'<svg width="([0-9.]+)pt"', cells.render(g, "svg", t)).group(1))
             for t in (None, "normal", "reduce")}
    assert width[None] < 1.2 * max(width["normal"], width["reduce"]), width
    y = {m[1]: float(m[0]) for m in re.findall(r'<text[^>]* y="([-0-9.]+)"[^>]*>(normal cell|reduction cell)<',
                                                 cells.render(g, "svg").decode())}
    assert y["normal cell"] < y["reduction cell"], y  # SVG y grows downwards: normal on top
    assert cells.render("DARTS_V2", "png", "normal").startswith(b"\x89PNG")
    paths = cells.write_cells(str(g), tmp_path / "best")
    assert [p.name for p in paths] == ["best_normal.svg", "best_reduce.svg"]
    assert all(b"<svg" in p.read_bytes() for p in paths)
    shown = cells.show_cells(g)
    assert "<svg" in shown.data
    with pytest.raises(ValueError, match="fmt"):
        cells.render(g, "gif")


def test_without_dot_a_warning_and_a_plotly_drawing(no_dot, tmp_path):
    g = FIXTURES["DARTS_V2"]
    with pytest.warns(UserWarning, match="apt-get install graphviz") as caught:
        fig = cells.show_cells(g, "normal")
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert isinstance(fig, go.Figure)
    assert list(trace(fig, "op labels").text) == [op for op, _ in g.normal]
    with pytest.warns(UserWarning, match="conda install graphviz"):
        both = cells.show_cells(g)
    assert [list(t.text) for t in both.data if t.name == "op labels"] == [[op for op, _ in g.normal],
                                                                        [op for op, _ in g.reduce]]
    with pytest.raises(cells.GraphvizMissing, match="apt-get install graphviz"):
        cells.render(g)
    with pytest.warns(UserWarning):
        paths = cells.write_cells(g, tmp_path / "best")
    assert [p.name for p in paths] == ["best_normal.dot", "best_reduce.dot"]
    view = widgets.cells_view(g, "best")  # the dashboard's fallback: no exception, a FigureWidget
    assert any(isinstance(c, go.FigureWidget) for c in view.children)


# --- dashboard ----------------------------------------------------------------------------------------------
def test_live_dashboard_received_every_generation(smoke):
    dash = smoke.dashboard
    assert dash.errors == []
    assert dash.rows == smoke.rows  # trained paths rebuilt from train_step events equal history.jsonl's
    best = trace(dash.figures["fitness"], "best")
    assert list(best.y) == [r["best"]["fitness"] for r in smoke.rows]
    loss = trace(dash.figures["training_curves"], "warm-up loss")
    assert list(loss.y) == smoke.rows[0]["train_loss"]
    assert all(bar.value == bar.max for bar in dash.progress.values())
    assert "<svg" in dash.cells.children[0].value
    assert f"{smoke.rows[-1]['best']['fitness']:.4f}" in dash.table.value
    assert dash.stop_button.disabled and not dash.running
    assert dash.result["best_genotype"] == smoke.result["best_genotype"]
    assert dash._repr_mimebundle_()  # displays as its root widget
    assert dash.widget.children


def test_dashboard_figures_change_as_recorded_events_arrive(smoke):
    events = read_jsonl(smoke.run_dir / "events.jsonl")
    assert events == [e.to_json() for e in smoke.events]  # the log holds exactly what subscribers saw
    dash = Dashboard(min_interval=0.0)
    best_lengths, loss_lengths = [], []
    for event in events:
        dash.handle(event)
        best_lengths.append(len(trace(dash.figures["fitness"], "best").y))
        loss_lengths.append(len(trace(dash.figures["training_curves"], "warm-up loss").y))
    assert dash.errors == []
    first_gen = next(k for k, e in enumerate(events) if e["type"] == "generation")
    assert loss_lengths[first_gen - 1] == smoke.rows[0]["supernet_steps"]  # drawn live, before generation 0 ended
    assert len(set(loss_lengths[:first_gen])) > 2
    assert sorted(set(best_lengths)) == [0, 1, 2, 3]
    assert [len(r["trained_paths"]) for r in dash.rows] == [len(r["trained_paths"]) for r in smoke.rows]


def test_dashboard_throttles_train_step_redraws(smoke):
    events = read_jsonl(smoke.run_dir / "events.jsonl")
    dash = Dashboard(min_interval=3600.0)
    last_warmup = max(k for k, e in enumerate(events) if e.get("phase") == "warmup" and e["type"] == "train_step")
    for event in events[: last_warmup + 1]:
        dash.handle(event)
    drawn = len(trace(dash.figures["training_curves"], "warm-up loss").y)
    assert drawn < smoke.rows[0]["supernet_steps"]  # train_step events did not each redraw
    for event in events[last_warmup + 1:]:
        dash.handle(event)
    assert len(trace(dash.figures["training_curves"], "warm-up loss").y) == smoke.rows[0]["supernet_steps"]
    assert list(trace(dash.figures["fitness"], "best").y) == [r["best"]["fitness"] for r in smoke.rows]


def test_dashboard_attached_to_a_resumed_run_shows_its_history(smoke):
    fake = RecordedSearch(smoke.run_dir)
    fake.run_dir, fake.generation, fake.warmup_done, fake.steps = smoke.run_dir, 2, 20, 32
    dash = Dashboard().attach(fake)
    assert dash.rows == smoke.rows
    assert list(trace(dash.figures["fitness"], "best").y) == [r["best"]["fitness"] for r in smoke.rows]
    assert "<svg" in dash.cells.children[0].value
    assert dash.progress["generations"].value == dash.progress["generations"].max == 2
    # events missed before attaching: the generation's trained paths come from history.jsonl
    late = Dashboard()
    late.search = SimpleNamespace(run_dir=smoke.run_dir)
    events = read_jsonl(smoke.run_dir / "events.jsonl")
    skipped = [k for k, e in enumerate(events) if e["type"] == "train_step"][:5]
    for k, event in enumerate(events):
        if k not in skipped:
            late.handle(event)
    assert late.errors == [] and late.rows == smoke.rows


class RecordedSearch:
    """A stand-in for Search that replays a recorded run's events; it pauses at its first checkpoint."""

    def __init__(self, run_dir: Path, fail: bool = False) -> None:
        self.events = read_jsonl(run_dir / "events.jsonl")
        self.config = SearchConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        self.run_dir, self.warmup_done, self.generation, self.steps = None, 0, -1, 0
        self.fail = fail
        self.stop_requested = False
        self.at_checkpoint, self.release = threading.Event(), threading.Event()
        self._listeners: list = []

    def subscribe(self, listener):
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def request_stop(self) -> None:
        self.stop_requested = True

    def run(self) -> dict:
        for event in self.events:
            for listener in list(self._listeners):
                listener(event)
            if event["type"] == "checkpoint":
                if self.fail:
                    raise RuntimeError("disk full")
                self.at_checkpoint.set()
                self.release.wait(30)
                if self.stop_requested:
                    return {"finished": False}
        return {"finished": True}


def test_stop_button_stops_the_search_at_a_checkpoint(smoke):
    fake = RecordedSearch(smoke.run_dir)
    dash = Dashboard(min_interval=0.0).run(fake)
    try:
        assert fake.at_checkpoint.wait(30)
        assert dash.running and not dash.stop_button.disabled
        dash.stop_button.click()
        assert fake.stop_requested and dash.stop_button.disabled
        with pytest.raises(RuntimeError, match="already running"):
            dash.run(fake)
    finally:
        fake.release.set()
    assert dash.wait(30) == {"finished": False}
    assert "stopped" in dash.status.value and not dash.running


def test_call_runs_a_step_in_a_thread_and_after_stop_starts_nothing_unless_resumed(smoke):
    import asyncio

    fake = RecordedSearch(smoke.run_dir)
    fake.release.set()  # no pause at checkpoints
    calls: list[str] = []

    def step(self):
        calls.append(threading.current_thread().name)
        return {"generation": len(calls)}

    fake.step = step.__get__(fake)  # a bound method, as search.step is
    dash = Dashboard(min_interval=0.0)
    assert asyncio.run(dash.call(fake.step)) == {"generation": 1}
    assert dash.search is fake and calls == ["nasviz-search"]  # attached by the call, run in the worker thread
    assert dash.stop_button.disabled and not dash.running
    dash.stop_button.click()  # between two steps: the next call starts nothing
    assert dash.stopped and fake.stop_requested is False
    assert asyncio.run(dash.call(fake.step)) is None and len(calls) == 1
    assert "Stop was pressed" in dash.status.value and "Stop pressed</b>" not in dash.status.value
    assert asyncio.run(dash.call(fake.step, resume=True)) == {"generation": 2} and not dash.stopped


def test_the_dashboard_says_why_the_best_fitness_fell(smoke):
    import copy

    from nasviz.runs.events import Generation

    first, second = copy.deepcopy(smoke.rows[0]), copy.deepcopy(smoke.rows[1])
    second["best"]["fitness"] = first["best"]["fitness"] - 0.01  # the re-evaluated best scores lower
    dash = Dashboard(min_interval=0.0)
    dash.handle(Generation.from_row(first))
    assert "fell" not in dash.status.value
    dash.handle(Generation.from_row(second))
    assert f"the best fell from {first['best']['fitness']:.4f}" in dash.status.value
    assert "re-evaluated under this generation" in dash.status.value and not dash.errors


def test_warmup_view_shows_what_runs_and_only_the_warmups_figures(tmp_path):
    from nasviz.viz.warmup_view import WarmupView

    search = Search(SearchConfig.from_preset("smoke", **{**TINY_SEARCH, "generations": 0}))
    view = WarmupView(min_interval=0.0).attach(search)
    assert "ready: 4 warm-up steps" in view.status.value
    seen: list[str] = []
    search.subscribe(lambda e: seen.append(view.status.value))
    row = search.warmup()
    assert any("warming up the supernet: step 2/4" in s for s in seen)
    assert any("evaluating the initial population" in s for s in seen)
    assert "done: 4 warm-up steps, initial population best fitness" in view.status.value
    assert [b.description for b in view.progress.values()] == ["warm-up 4/4", "initial population 3/3"]
    curves, ops = view.figures["training_curves"], view.figures["op_frequency"]
    assert len(trace(curves, "warm-up loss").y) == 4 and not trace(curves, "fine-tuning loss").y
    assert [t.name for t in ops.data] == ["warm-up"]  # no empty fine-tuning or difference panels
    assert view.row["best"] == row["best"]


TINY_SEARCH = dict(warmup_steps=4, population=3, generations=3, finetune_steps=4, fitness_images=64,
                   weight_images=256, batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=4, top_k=2)


def _press_stop_at(dash: Dashboard, search: Search, phase: str, step: int, generation: int = 0) -> list[str]:
    """Press Stop (as the button does, from the search's thread) at one training step; returns the status then."""
    from nasviz.runs.events import TrainStep

    seen: list[str] = []

    def press(event):
        if isinstance(event, TrainStep) and (event.phase, event.step, event.generation) == (phase, step, generation) \
                and not seen:
            dash.stop()
            seen.append(dash.status.value)

    search.subscribe(press)
    return seen


def test_stop_during_the_warmup_stops_after_that_step_and_every_later_call_shows_the_run_as_it_stopped(tmp_path):
    import asyncio

    from nasviz.viz.partial import is_partial, rows_so_far

    search = Search(SearchConfig.from_preset("smoke", **TINY_SEARCH), tmp_path / "run")
    dash = Dashboard(min_interval=0.0).attach(search)
    status = _press_stop_at(dash, search, "warmup", 1)
    assert asyncio.run(dash.call(search.warmup)) is None
    assert "stopping after this warm-up step" in status[0]
    assert search.warmup_done == 2 and search.generation == -1  # inside the chunk of 4: at once, not at its end
    assert asyncio.run(dash.call(search.step)) is None  # Run All's next cells start nothing
    result = asyncio.run(dash.call(search.run))  # the run as it stopped, not None
    assert result["finished"] is False and result["best_genotype"] is None
    assert result["supernet_steps"]["warmup"] == 2
    assert "stopped during the warm-up, after 2/4" in dash.status.value and "Stop pressed" not in dash.status.value
    for source in (search, tmp_path / "run"):  # in memory, and from the checkpoint (a reopened notebook)
        rows = rows_so_far(source)
        assert is_partial(rows) and len(rows[0]["train_loss"]) == 2 and rows[0]["supernet_steps"] == 2
    figs = {f.layout.title.text: f for f in show_static(tmp_path / "run")}  # only the figures with data
    assert len(figs) == 2 and len(trace(figs["Supernet training"], "warm-up loss").x) == 2


def test_stop_during_a_generation_ends_it_and_run_returns_the_run_as_it_stopped(tmp_path):
    import asyncio

    search = Search(SearchConfig.from_preset("smoke", **TINY_SEARCH), tmp_path / "run")
    dash = Dashboard(min_interval=0.0).attach(search)
    status = _press_stop_at(dash, search, "finetune", 0, generation=1)
    assert asyncio.run(dash.call(search.warmup))["generation"] == 0
    assert asyncio.run(dash.call(search.step))["generation"] == 1  # the generation ends: a checkpoint holds whole ones
    assert "stopping after generation 1" in status[0]
    result = asyncio.run(dash.call(search.run))
    assert result["finished"] is False and result["generation"] == 1 and result["best_genotype"] is not None
    assert json.loads((tmp_path / "run" / "result.json").read_text())["generation"] == 1
    assert "stopped after generation 1" in dash.status.value


def test_a_failing_search_is_reported_and_reraised_by_wait(smoke):
    fake = RecordedSearch(smoke.run_dir, fail=True)
    dash = Dashboard().run(fake)
    with pytest.raises(RuntimeError, match="disk full"):
        dash.wait(30)
    assert "search failed" in dash.status.value


# --- replay -------------------------------------------------------------------------------------------------
def test_replay_shows_each_generation(smoke):
    replay = Replay(smoke.run_dir)
    assert replay.state["generation"] == 2 and replay.slider.max == 2  # opens on the last generation
    for g, row in enumerate(smoke.rows):
        replay.slider.value = g
        assert replay.state["generation"] == g
        assert replay.state["population"] == row["population"]
        assert replay.state["fitness"] == row["fitness"]
        assert replay.state["best_genotype"] == row["best"]["genotype"]
        assert f"generation {g}" in replay.cells.children[0].value and "<svg" in replay.cells.children[0].value
        assert f"after generation {g}" in replay.table.value
        shade = replay.figures["fitness"].layout.shapes[0]
        assert shade.x0 < g < shade.x1
        tuned = trace(replay.figures["op_frequency"], "fine-tuning").customdata
        expected = op_counts(row["trained_paths"]) if g >= 1 else op_counts([])
        assert [list(r) for r in tuned] == expected
    assert replay.show(-3).state["generation"] == 0
    with pytest.raises(ValueError, match="not recorded"):
        replay.show(7)


def test_replay_follows_a_growing_history_and_tolerates_an_empty_one(smoke, tmp_path):
    lines = (smoke.run_dir / "history.jsonl").read_text().splitlines(keepends=True)
    run = tmp_path / "growing"
    run.mkdir()
    replay = Replay(run)
    assert replay.state == {"generation": None} and replay.slider.disabled
    (run / "history.jsonl").write_text("".join(lines[:1]))
    replay.refresh()
    assert replay.state["generation"] == 0
    (run / "history.jsonl").write_text("".join(lines) + '{"torn')  # a torn last line is ignored
    replay.refresh()
    assert replay.slider.max == 2 and replay.state["generation"] == 2
    replay.show(1)
    replay.refresh()
    assert replay.state["generation"] == 1  # not on the last one: stays


# --- report and CLI -----------------------------------------------------------------------------------------
def test_write_report_creates_every_file(smoke, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("history.jsonl", "result.json", "config.json"):
        (run / name).write_bytes((smoke.run_dir / name).read_bytes())
    paths = write_report(run)
    names = {p.relative_to(run).as_posix() for p in paths}
    assert {f"figures/{n}.html" for n in figures.FIGURES} <= names
    assert {"figures/plotly.min.js", "report.html"} <= names
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    page = (run / "report.html").read_text()
    assert "figures/plotly.min.js" in page and page.count("plotly-graph-div") >= len(figures.FIGURES)
    assert smoke.result["best_genotype"] in page.replace("&#x27;", "'")
    if cells.dot_path():
        assert "<svg" in page and (run / "best_normal.svg").is_file()


def test_show_static_returns_plain_figures(smoke, capsys):
    figs = show_static(smoke.run_dir, ["fitness", "diversity"])
    assert [f.layout.title.text for f in figs] == ["Fitness per generation", "Population diversity"]
    assert all(type(f) is go.Figure for f in figs)
    assert len(show_static(smoke.rows)) == len(figures.FIGURES)
    with pytest.raises(ValueError, match="unknown figure"):
        show_static(smoke.rows, ["nope"])


@pytest.mark.skipif(cells.dot_path() is None, reason="Graphviz's dot is not installed")
def test_render_command_writes_an_svg(smoke, tmp_path, monkeypatch, capsys):
    parser = argparse.ArgumentParser()
    add_render_command(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "cells" / "darts.svg"
    args = parser.parse_args(["render", "--genotype", "DARTS_V2", "--out", str(out), "--cell", "normal"])
    assert args.func(args) == 0
    assert b"<svg" in out.read_bytes() and b"reduction cell" not in out.read_bytes()
    # through the real CLI: a run directory's best genotype, and DOT text
    assert cli.main(["render", "--genotype", str(smoke.run_dir), "--out", str(tmp_path / "best.svg")]) == 0
    assert b"reduction cell" in (tmp_path / "best.svg").read_bytes()
    assert cli.main(["render", "--genotype", "PDARTS", "--out", str(tmp_path / "p.dot")]) == 0
    assert (tmp_path / "p.dot").read_text().startswith("digraph")
    assert cli.main(["render", "--genotype", "DARTS_V2", "--out", str(tmp_path / "x.gif")]) == 2
    assert "allowed: .svg, .png, .pdf, .dot" in capsys.readouterr().err


def test_engine_and_cell_rendering_never_import_widgets():
    code = ("import sys, nasviz.search.loop, nasviz.cli, nasviz.viz.cells; "
            "bad = [m for m in ('ipywidgets', 'anywidget', 'plotly') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- fitness vs size, with the non-dominated front (synthetic history rows) --------------------------------------
def _row(generation: int, individuals: list[tuple[str, float, int, int]]) -> dict:
    return {"generation": generation, "individuals": [
        {"genotype": g, "role": "offspring", "fitness": f, "params": p, "flops": fl, "selected": True}
        for g, f, p, fl in individuals]}


def test_front_figure_marks_the_non_dominated_points_of_everything_evaluated():
    from nasviz.viz import front_figure, front_points

    rows = [
        _row(0, [("a", 0.50, 100, 9_000), ("b", 0.70, 300, 20_000), ("c", 0.40, 200, 30_000)]),
        _row(1, [("d", 0.80, 500, 25_000), ("e", 0.80, 400, 40_000), ("f", math.nan, 50, 1_000)]),
    ]
    # by FLOPs: a (9k, .5), b (20k, .7), d (25k, .8) trade off; c is beaten by a, e by d; f has no fitness
    fig = front_figure(rows, "flops")
    assert len(trace(fig, "evaluated").x) == 5
    assert list(trace(fig, "non-dominated").x) == [9_000, 20_000, 25_000]
    assert list(trace(fig, "Pareto front").y) == [0.5, 0.7, 0.8]
    assert "3 non-dominated of 5" in fig.layout.title.text and "FLOPs" in fig.layout.xaxis.title.text
    # by params the answer differs: e (400) has fewer params than d (500) at the same fitness; c is still beaten
    assert [p["genotype"] for p in front_points(rows, "params") if p["front"]] == ["a", "b", "e"]
    assert [p["genotype"] for p in front_points(rows, "params", generation=1) if p["front"]] == ["e"]
    # the last generation's front, the earlier generation faded and left out of it
    last = front_figure(rows, "flops", 1, earlier=True)
    assert sorted(trace(last, "earlier generations").x) == [9_000, 20_000, 30_000]
    assert list(trace(last, "non-dominated").x) == [25_000] and "1 non-dominated of 2" in last.layout.title.text


def test_front_figure_without_sizes_or_rows_is_empty_but_complete():
    from nasviz.viz import front_figure

    no_flops = [{"generation": 0, "individuals": [{"genotype": "a", "role": "initial", "fitness": 0.5,
                                                   "params": 10}]}]
    for rows in ([], no_flops):
        fig = front_figure(rows)
        assert [t.name for t in fig.data] == ["earlier generations", "evaluated", "non-dominated", "Pareto front"]
        assert len(trace(fig, "evaluated").x) == 0
    assert len(trace(front_figure(no_flops, "params"), "non-dominated").x) == 1
    with pytest.raises(ValueError, match="size 'macs' is not allowed; allowed: flops, params"):
        front_figure(no_flops, "macs")


def test_responsive_figure_updates_clear_stale_layout_and_never_send_the_height(smoke):
    widget = widgets.figure_widget(figures.fitness_figure([]))
    assert widget.layout.autosize and widget.layout.width is None and widget._config["responsive"]
    sent = []
    for name in ("_py2js_relayout", "_py2js_update"):
        widget.observe(lambda ch: ch["new"] and sent.append(ch["new"].get("relayout_data")
                                                              or ch["new"].get("layout_data") or {}), names=name)
    widgets.sync(widget, figures.fitness_figure(smoke.rows))
    assert any("annotations" in m and m["annotations"] is None for m in sent), sent  # the "no data yet" note goes
    assert sent and not any("height" in m or "width" in m for m in sent)  # plotly.js would pin the width
    assert widget._widget_layout["height"] == layout.HEIGHT and "width" not in widget._widget_layout  # new views
    fixed = widgets.figure_widget(figures.fitness_figure([]), 540)
    widgets.sync(fixed, figures.fitness_figure(smoke.rows), 540)
    assert fixed.layout.width == 540 and fixed.layout.height == layout.HEIGHT


def test_responsive_boxes_share_a_row_and_refit_their_figure_when_shown():
    widget = widgets.figure_widget(figures.fitness_figure([]))
    box = widgets.boxed(widget)
    assert box.layout.flex == f"1 1 {widgets.FIGURE_BASIS}px" and box.layout.width is None
    fits = widget.layout.meta["fit"]
    box._view_count = 1  # what the front end does when it displays the box
    assert widget.layout.meta["fit"] > fits
    assert widgets.boxed(widget, 540).layout.width == "548px"
