"""Exploring a search in the views: the genealogy figure, the inspector, click-to-inspect in the dashboard and the
replay, and the genealogy in report.html; every view names an individual by its lineage id. (A real click in
JupyterLab: tests/test_browser_explore.py.)"""

from __future__ import annotations

import json

import pytest
from plotly.callbacks import Points

from nasviz.runs import lineage, rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.viz import Dashboard, Replay, write_report
from nasviz.viz.common import population_table_html
from nasviz.viz.explorer import Explorer
from nasviz.viz.figures import before_after_figure, fitness_figure, fitness_vs_flops_figure
from nasviz.viz.genealogy import genealogy_figure
from nasviz.viz.inspector import HIGHLIGHT, Inspector
from nasviz.viz.truth import fitness_vs_truth_figure as truth_figure

pytest.importorskip("ipywidgets")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "run"
    Search(SearchConfig.from_preset("quick", space="mini", fitness="table", generations=5), out).run()
    return out


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def click(explorer: Explorer, widget, name: str, index: int) -> None:
    """What plotly's widget does on a click on point `index` of trace `name`."""
    t = trace(widget, name)
    points = Points(point_inds=[index], xs=[t.x[index]], ys=[t.y[index]], trace_name=name,
                    trace_index=list(widget.data).index(t))
    t._dispatch_on_click(points, None)


def test_genealogy_draws_the_population_and_all_its_ancestors(run_dir):
    rows = rundir.load_history(run_dir)
    records = rundir.lineage(run_dir)
    fig = genealogy_figure(rows)
    nodes = [c[0] for c in trace(fig, "individuals").customdata]
    population = rows[-1]["population_ids"]
    assert set(population) <= set(nodes)
    assert set(nodes) == {a for key in population for a in lineage.ancestors(records, key)}
    links = sum(len(records[k]["parents"]) for k in nodes)
    edges = sum(len(trace(fig, f"{kind} edge").x) // 3 for kind in ("mutation", "crossover"))
    assert edges == links  # one edge per parent link, each parent in the tree
    crossing = sum(len(records[k]["parents"]) for k in nodes if records[k]["operator"].startswith("crossover"))
    assert len(trace(fig, "crossover edge").x) // 3 == crossing
    hover = trace(fig, "individuals").text[nodes.index(population[0])]
    assert population[0] in hover and "parents:" in hover
    early = genealogy_figure(rows, 1)
    assert {c[0] for c in trace(early, "individuals").customdata} <= {k for k in records if records[k]["born"] <= 1}


def test_a_click_on_a_figure_inspects_that_individual(run_dir):
    rows = rundir.load_history(run_dir)
    dash = Dashboard(min_interval=0)
    for row in rows:
        dash.handle({"type": "generation", **row})
    widget = dash.figures["fitness"]
    offspring = trace(widget, "offspring")
    key = offspring.customdata[3][0]  # its lineage id, as the hover text says
    click(dash.explorer, widget, "offspring", 3)
    assert not dash.explorer.errors, dash.explorer.errors
    shown = dash.explorer.inspector.shown
    record = rundir.individual(run_dir, shown)
    assert shown == key
    generation = offspring.customdata[3][3]  # the point is that individual: its fitness in that generation
    assert next(g["fitness"] for g in record["generations"] if g["generation"] == generation) == offspring.y[3]
    genotype = record["genotype"]
    assert shown in dash.explorer.inspector.facts.value
    assert json.dumps(genotype)[1:-1].replace("'", "&#x27;") in dash.explorer.inspector.facts.value
    story = dash.explorer.inspector.story.value
    assert story.count("<circle") == len(record["story"]) >= 1
    assert all(f"fitness {e['fitness']:.4f}" in story for e in record["story"])
    # the genealogy's nodes inspect too
    genealogy = dash.explorer.genealogy
    node = trace(genealogy, "individuals").customdata[0][0]
    click(dash.explorer, genealogy, "individuals", 0)
    assert dash.explorer.inspector.shown == node


def test_the_inspector_highlights_the_mutated_gene_and_tells_each_selection(run_dir):
    rows = rundir.load_history(run_dir)
    records = lineage.individuals(rows)
    inspector = Inspector()
    inspector.update(rows)
    mutant = next(r for r in records.values() if r["operator"] == "mutation")
    inspector.show(mutant["id"])
    change = mutant["changes"]["mutations"][0]
    assert HIGHLIGHT in inspector.parents.value and mutant["parents"][0] in inspector.parents.value
    assert f"←{change['old'][1]} → " in inspector.parents.value
    dropped = next(r for r in records.values() if not r["generations"][-1]["selected"])
    inspector.show(dropped["id"])
    cut = dropped["generations"][-1]
    assert "dropped" in inspector.selections.value and cut["cut_id"] in inspector.selections.value
    with pytest.raises(ValueError, match="no individual 'nobody'"):
        inspector.show("nobody")


def test_replay_shows_the_genealogy_of_the_slider_generation(run_dir):
    replay = Replay(run_dir)
    replay.show(2)
    assert replay.explorer.generation == 2
    shown = {c[0] for c in trace(replay.explorer.genealogy, "individuals").customdata}
    assert all(rundir.individual(run_dir, k)["born"] <= 2 for k in shown)
    click(replay.explorer, replay.figures["fitness"], "initial population", 0)
    assert replay.explorer.inspector.shown.startswith("g0-")


def test_report_has_the_genealogy_with_hover(run_dir, tmp_path):
    write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    assert "Genealogy of generation 5" in page and "parents:" in page
    assert (run_dir / "figures" / "genealogy.html").is_file()


def test_views_of_a_run_recorded_before_lineage(run_dir, tmp_path):
    rows = rundir.load_history(run_dir)
    for row in rows:
        row.pop("population_ids")
        for entry in row["individuals"]:
            for key in ("id", "born", "operator", "parents", "changes", "story"):
                entry.pop(key)
    fig = genealogy_figure(rows)
    assert len(trace(fig, "individuals").x) == len(rows[-1]["population"])  # no known parents: the population
    inspector = Inspector()
    inspector.update(rows)
    inspector.show(rows[-1]["population"][0])
    assert "parents unknown" in inspector.parents.value or "no parents" in inspector.parents.value
    # the figures name its individuals by the ids the same rule gives, as the inspector does
    born = trace(fitness_figure(rows), "initial population").customdata
    assert [c[0] for c in born] == [f"g0-{k}" for k in range(len(rows[0]["individuals"]))]
    offspring = trace(fitness_figure(rows), "offspring").customdata
    assert offspring[0][0] == "g1-0" and inspector.show(offspring[0][0])["born"] == 1


def test_every_figure_and_table_names_individuals_by_their_lineage_id(run_dir):
    rows = rundir.load_history(run_dir)
    records = rundir.lineage(run_dir)
    by_genotype = {r["genotype"]: key for key, r in records.items()}
    last = rows[-1]
    for fig, name in ((fitness_figure(rows), "offspring"), (before_after_figure(rows), "parents"),
                      (fitness_vs_flops_figure(rows), "evaluated"), (truth_figure(rows), "population")):
        points = trace(fig, name)
        assert points.customdata is not None and len(points.customdata), name
        assert all(c[0] in records for c in points.customdata), name
        assert "%{customdata[0]}" in points.hovertemplate and "#" not in points.hovertemplate, name
    truth = trace(truth_figure(rows), "population")
    assert [c[0] for c in truth.customdata] == [by_genotype[i["genotype"]] for i in last["individuals"]]
    table = population_table_html(last, None)
    assert all(f">{key}<" in table for key in last["population_ids"]) and ">#" not in table


def test_the_supernet_vs_truth_figure_is_shown_and_a_click_on_it_inspects(run_dir):
    rows = rundir.load_history(run_dir)
    dash = Dashboard(min_interval=0)
    for row in rows:
        dash.handle({"type": "generation", **row})
    assert dash.truth is not None and dash.truth_box.children  # the mini space has a ground-truth table
    dots = trace(dash.truth, "population")
    click(dash.explorer, dash.truth, "population", 2)
    assert not dash.explorer.errors, dash.explorer.errors
    assert dash.explorer.inspector.shown == dots.customdata[2][0]
    assert "table truth" in dash.explorer.inspector.facts.value
    replay = Replay(run_dir)
    replay.show(1)
    dots = trace(replay.truth, "population")
    assert len(dots.x) == len(rows[1]["individuals"])
    click(replay.explorer, replay.truth, "population", 0)
    assert replay.explorer.inspector.shown == dots.customdata[0][0]
    assert rundir.individual(run_dir, dots.customdata[0][0])["genotype"] == rows[1]["individuals"][0]["genotype"]



def test_a_notebooks_own_truth_figure_is_clickable_live_and_static_headless(run_dir, monkeypatch):
    """Notebook 07's `nv.clickable(fig, rows)`: in a front end the figure sits above an explorer (a click inspects,
    also one relayed from the browser); run headless (papermill) it stays the plain figure, kept in the file."""
    from nasviz import notebooks as nv

    rows = rundir.load_history(run_dir)
    fig = truth_figure(rows)
    monkeypatch.setenv(nv.HEADLESS_ENV, "1")
    assert nv.clickable(fig, rows) is fig
    monkeypatch.setattr("nasviz.notebooks.session.headless", lambda: False)
    view = nv.clickable(fig, rows)
    assert "nasviz-view" in view.widget._dom_classes and view.explorer.widget in view.widget.children
    dots = trace(view.figure, "population")
    click(view.explorer, view.figure, "population", 1)
    assert view.explorer.inspector.shown == dots.customdata[1][0] and not view.explorer.errors
    assert "table truth" in view.explorer.inspector.facts.value
    view.explorer.relay._handle_custom_msg({"event": "click", "customdata": list(dots.customdata[0])}, [])
    assert view.explorer.inspector.shown == dots.customdata[0][0] and not view.explorer.errors

def test_a_click_relayed_from_the_browser_inspects_that_individual(run_dir):
    """What `nasviz.viz.clicks.ClickRelay`'s view sends on a click (a custom message): it works while a cell awaits
    the search, when a FigureWidget's own click message is held back by the browser."""
    rows = rundir.load_history(run_dir)
    dash = Dashboard(min_interval=0)
    for row in rows:
        dash.handle({"type": "generation", **row})
    assert dash.explorer.relay in dash.explorer.widget.children and "nasviz-view" in dash.widget._dom_classes
    key = trace(dash.figures["fitness"], "offspring").customdata[2][0]
    dash.explorer.relay._handle_custom_msg({"event": "click", "customdata": [key, 1234, "kept", 1]}, [])
    assert dash.explorer.inspector.shown == key and not dash.explorer.errors
    dash.explorer.relay._handle_custom_msg({"event": "click", "customdata": [[3, 1], [0, 2]]}, [])  # a heatmap cell
    assert dash.explorer.inspector.shown == key and not dash.explorer.errors


def test_while_a_cell_awaits_the_search_the_dashboard_draws_in_the_event_loops_thread(tmp_path):
    """Figures are changed by one thread only: the search's thread hands every redraw of them to the event loop of
    the awaiting cell (plotly's FigureWidget is not thread-safe)."""
    import asyncio
    import threading

    search = Search(SearchConfig.from_preset("quick", space="mini", fitness="table", generations=3), tmp_path / "r")
    dash = Dashboard(min_interval=0).attach(search)
    drawn: list[int] = []
    draw = dash._draw_here
    def record(force: bool, plain_only: bool = False) -> None:
        if not plain_only:  # the progress bars and the status line are drawn at once, in any thread
            drawn.append(threading.get_ident())
        draw(force, plain_only)

    dash._draw_here = record
    result = asyncio.run(dash.call(search.run))
    assert result["finished"] is True and dash._thread is not None
    assert drawn and set(drawn) == {threading.get_ident()}, "a redraw ran in the search's thread"
    assert len(trace(dash.figures["fitness"], "best").x) == 4  # generations 0..3, all drawn
    assert "done" in dash.status.value
