"""Pause / Step / Continue (nasviz.viz.controls) on a dashboard's search in its thread: Pause holds the search at a
checkpointed generation, Step runs exactly one more, Continue ends as the uninterrupted run does, Stop ends a pause.
(In JupyterLab under Run All: tests/test_browser.py.)"""

from __future__ import annotations

import pytest

from nasviz.runs import rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.viz import Dashboard

pytest.importorskip("ipywidgets")
WAIT = 120  # seconds: only reached if the search never pauses (a failure)


def config() -> SearchConfig:
    return SearchConfig.from_preset("quick", space="mini", fitness="table", generations=5)


def test_pause_step_continue_ends_as_the_uninterrupted_run(tmp_path):
    plain = Search(config(), tmp_path / "plain").run()
    search = Search(config(), tmp_path / "paused")
    dash = Dashboard(min_interval=0)
    dash.attach(search)
    dash.controls.pause()  # before it starts: it pauses once generation 0 is checkpointed
    dash.run(search)
    try:
        assert dash.controls.wait_until_paused(timeout=WAIT) == 0
        assert search.generation == 0 and len(rundir.load_history(search.run_dir)) == 1
        assert rundir.load_result(search.run_dir)["generation"] == 0  # checkpointed there
        assert dash.running and "paused</b> after generation 0" in dash.controls.label.value
        assert dash.controls.step_button.disabled is False and dash.controls.continue_button.disabled is False
        dash.controls.step()
        assert dash.controls.wait_until_paused(beyond=0, timeout=WAIT) == 1  # exactly one generation more
        assert search.generation == 1 and dash.progress["generations"].value == 1
        dash.controls.step()
        assert dash.controls.wait_until_paused(beyond=1, timeout=WAIT) == 2
        dash.controls.resume()
        result = dash.wait(WAIT)
    finally:
        dash.controls.resume()
        dash.wait(WAIT)
    assert result is not None and result["finished"] is True
    assert result["top_k"] == plain["top_k"] and result["best_genotype"] == plain["best_genotype"]
    assert [r["individuals"] for r in rundir.load_history(tmp_path / "paused")] == \
        [r["individuals"] for r in rundir.load_history(tmp_path / "plain")]
    assert all(b.disabled for b in dash.controls.buttons) and dash.controls.label.value == ""


def test_stop_ends_a_pause_at_the_paused_generation(tmp_path):
    search = Search(config(), tmp_path / "run")
    dash = Dashboard(min_interval=0)
    dash.attach(search)
    dash.controls.pause()
    dash.run(search)
    try:
        assert dash.controls.wait_until_paused(timeout=WAIT) == 0
        dash.controls.step()
        assert dash.controls.wait_until_paused(beyond=0, timeout=WAIT) == 1
        dash.stop()
        result = dash.wait(WAIT)
    finally:
        dash.controls.resume()
        dash.wait(WAIT)
    assert result["finished"] is False and result["generation"] == 1
    assert len(rundir.load_history(tmp_path / "run")) == 2
    assert "stopped after generation 1" in dash.status.value and not dash.controls.paused
    resumed = Search.resume(tmp_path / "run").run()  # a stopped pause resumes like any stop
    assert resumed["top_k"] == Search(config()).run()["top_k"]
