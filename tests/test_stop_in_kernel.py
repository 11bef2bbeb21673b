"""The dashboard's Stop button in a real IPython kernel, with later cells already queued (what Run All does).

A JupyterLab front end sends a button click as a `comm_msg` on the shell channel, behind every execute request
it queued before. Here a jupyter_client plays that front end: it queues the search cell and the cells after it,
then sends the click exactly as @jupyter-widgets does (`{"method": "custom", "content": {"event": "click"}}`)
while the search runs. The search must stop at its next checkpoint, and the queued cells must still run, in
order, afterwards. (The same in JupyterLab and Chromium: tests/test_browser.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kernel_support import Kernel

GENERATIONS = 40
"""Far more than the smoke search can run before the click is handled: a Stop that does nothing fails the test."""

SETUP = """
import json
from nasviz import Search, SearchConfig
from nasviz.viz import Dashboard
search = Search(SearchConfig.from_preset("smoke", generations={generations}), {run_dir!r})
dash = Dashboard().attach(search)
print("STOP-BUTTON", dash.stop_button.model_id)
"""


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_stop_works_while_later_cells_are_queued(tmp_path):
    run_dir = tmp_path / "run"
    kernel = Kernel(tmp_path)
    try:
        setup = kernel.run(SETUP.format(generations=GENERATIONS, run_dir=str(run_dir)))
        kernel.pump(lambda: kernel.done(setup), 300, "the set-up cell")
        assert kernel.replies[setup]["content"]["status"] == "ok", kernel.replies[setup]["content"]
        button = kernel.text(setup).split("STOP-BUTTON", 1)[1].split()[0]
        # Run All: the search cell and every cell after it are queued before anything is clicked
        search_cell = kernel.run("row = await dash.call(search.warmup)\nresult = await dash.call(search.run)")
        after = kernel.run("print('AFTER', json.dumps({'finished': result['finished'], "
                           "'generation': result['generation'], 'stopped': dash.stopped, "
                           "'status': dash.status.value}))")
        later = kernel.run("row2 = await dash.call(search.step)\nprint('LATER', row2 is None, search.generation)")
        kernel.pump(lambda: len(_history(run_dir)) >= 2, 300, "generation 1 to be written")
        kernel.comm_msg(button, {"method": "custom", "content": {"event": "click"}})  # as @jupyter-widgets
        kernel.pump(lambda: kernel.done(later), 300, "the queued cells to run")
    finally:
        kernel.close()

    assert kernel.replies[search_cell]["content"]["status"] == "ok", kernel.replies[search_cell]["content"]
    report = json.loads(kernel.text(after).split("AFTER", 1)[1])
    history = _history(run_dir)
    saved = json.loads((run_dir / "result.json").read_text())
    assert report["finished"] is False and saved["finished"] is False, report
    assert report["generation"] == saved["generation"] == history[-1]["generation"] < GENERATIONS, report
    assert report["stopped"] and "stopped after generation" in report["status"], report
    assert "stopping" not in report["status"], f"stale status after the run stopped: {report['status']}"
    # the cell queued after the stop started nothing: the search stays where it stopped
    assert kernel.text(later).split() == ["LATER", "True", str(report["generation"])]
    order = [kernel.replies[m]["content"]["execution_count"] for m in (search_cell, after, later)]
    assert order == sorted(order), f"queued cells ran out of order: {order}"
