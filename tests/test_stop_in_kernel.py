"""The dashboard's Stop button in a real IPython kernel, with later cells already queued (what Run All does).

A JupyterLab front end sends a button click as a `comm_msg` on the shell channel, behind every execute request
it queued before. Here a jupyter_client plays that front end: it queues the search cell and the cells after it,
then sends the click exactly as @jupyter-widgets does (`{"method": "custom", "content": {"event": "click"}}`)
while the search runs. The search must stop at its next checkpoint, and the queued cells must still run, in
order, afterwards. (The same in JupyterLab and Chromium: tests/test_browser.py.)
"""

from __future__ import annotations

import json
import os
import queue
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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


class Kernel:
    """A python3 kernel and its client; `run(code)` queues a cell and returns its msg_id."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's nasviz
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
        self.stdout: list[tuple[str, str]] = []  # (parent msg_id, text)
        self.replies: dict[str, dict] = {}
        self.idle: set[str] = set()  # cells whose outputs have all arrived (iopub status idle)

    def run(self, code: str) -> str:
        return self.kc.execute(code)

    def pump(self, until, timeout: float, what: str) -> None:
        """Read iopub and shell messages until `until()` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; stdout: {self.stdout}")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
                if msg["msg_type"] == "stream":
                    self.stdout.append((msg["parent_header"].get("msg_id"), msg["content"]["text"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    self.idle.add(msg["parent_header"].get("msg_id"))
                elif msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
            except queue.Empty:
                pass
            while True:
                try:
                    reply = self.kc.get_shell_msg(timeout=0)
                except queue.Empty:
                    break
                self.replies[reply["parent_header"].get("msg_id")] = reply

    def done(self, msg_id: str) -> bool:
        return msg_id in self.replies and msg_id in self.idle

    def text(self, msg_id: str) -> str:
        return "".join(t for parent, t in self.stdout if parent == msg_id)

    def click(self, model_id: str) -> None:
        data = {"method": "custom", "content": {"event": "click"}}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": model_id, "data": data}))

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


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
        kernel.click(button)
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
