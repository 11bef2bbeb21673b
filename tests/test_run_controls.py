"""Pause / Step / Continue (nasviz.viz.controls) on a dashboard's search in its thread: Pause holds the search at a
checkpointed generation (in the warm-up: after the current training step), Step runs exactly one more, Continue
ends as the uninterrupted run does, Stop ends a pause. (In JupyterLab under Run All: tests/test_browser_explore.py.)"""

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


WARMING = dict(space="mini", warmup_steps=8, checkpoint_every=4, population=3, generations=2, finetune_steps=4,
               fitness_images=64, weight_images=256, batch_size=16, eval_batch_size=64, bn_batches=1, top_k=2)
"""A tiny supernet search whose warm-up is two chunks of 4 steps (a pause inside a chunk cuts it)."""


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


def test_pause_in_the_warmup_holds_after_that_step_checkpointed_and_ends_as_the_uninterrupted_run(tmp_path):
    from nasviz.runs.events import TrainStep

    plain = Search(SearchConfig.from_preset("smoke", **WARMING), tmp_path / "plain").run()
    search = Search(SearchConfig.from_preset("smoke", **WARMING), tmp_path / "paused")
    dash = Dashboard(min_interval=0)
    dash.attach(search)
    # press Pause (as the button does, from another thread than the kernel's) during warm-up steps 2 and 6 of 8:
    # both inside a chunk of 4, so each pause must cut its chunk there
    search.subscribe(lambda e: dash.controls.pause() if isinstance(e, TrainStep) and e.phase == "warmup"
                     and e.step in (1, 5) else None)
    dash.run(search)
    try:
        assert dash.controls.wait_until_paused(beyond=-2, timeout=WAIT) == -1
        assert search.warmup_done == 2 and search.generation == -1  # after that step, not at the chunk's end
        assert rundir.load_result(search.run_dir)["supernet_steps"]["warmup"] == 2  # checkpointed there
        assert rundir.load_search_state(search.run_dir)["warmup_done"] == 2
        assert "paused</b> in the warm-up after step 2/8" in dash.controls.label.value
        assert dash.controls.step_button.disabled is False and dash.controls.continue_button.disabled is False
        dash.controls.resume()  # Continue ... until the second pause, at step 6
        assert dash.controls.wait_until_paused(beyond=-2, timeout=WAIT) == -1
        assert search.warmup_done == 6 and dash.progress["warmup"].value == 6
        dash.controls.step()  # the rest of the warm-up and generation 0, then paused again
        assert dash.controls.wait_until_paused(beyond=-1, timeout=WAIT) == 0
        assert search.warmup_done == 8 and len(rundir.load_history(search.run_dir)) == 1
        dash.controls.resume()
        result = dash.wait(WAIT)
    finally:
        dash.controls.resume()
        dash.wait(WAIT)
    assert result is not None and result["finished"] is True
    for key in ("best_genotype", "best_fitness", "top_k", "supernet_steps"):
        assert result[key] == plain[key], key
    paused, uninterrupted = (rundir.load_history(tmp_path / name) for name in ("paused", "plain"))
    assert [r["train_loss"] for r in paused] == [r["train_loss"] for r in uninterrupted]
    assert [r["individuals"] for r in paused] == [r["individuals"] for r in uninterrupted]
    assert all(b.disabled for b in dash.controls.buttons) and dash.controls.label.value == ""
