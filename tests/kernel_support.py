"""A real python3 kernel driven by jupyter_client, as a front end drives it: queue cells, send widget messages,
read what comes back (replies on the shell channel; outputs and busy/idle statuses on iopub)."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Kernel:
    """A python3 kernel (this checkout's nasviz importable, one thread) and its client."""

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout's nasviz
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)
        self.stdout: list[tuple[str, str]] = []  # (parent msg_id, text)
        self.replies: dict[str, dict] = {}
        self.idle: set[str] = set()  # requests whose outputs have all arrived (iopub status idle)

    def run(self, code: str) -> str:
        """Queue a cell; its msg_id."""
        return self.kc.execute(code)

    def poll(self, until: Callable[[], bool], timeout: float) -> bool:
        """Read iopub and shell messages until `until()` holds (True) or `timeout` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                return False
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
                parent = msg["parent_header"].get("msg_id")
                if msg["msg_type"] == "stream":
                    self.stdout.append((parent, msg["content"]["text"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    self.idle.add(parent)
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
        return True

    def pump(self, until: Callable[[], bool], timeout: float, what: str) -> None:
        """`poll`, raising AssertionError (with the outputs so far) on timeout."""
        if not self.poll(until, timeout):
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; stdout: {self.stdout}")

    def done(self, msg_id: str) -> bool:
        """Whether the request has its reply and its idle status (what a front end waits for)."""
        return msg_id in self.replies and msg_id in self.idle

    def text(self, msg_id: str) -> str:
        return "".join(t for parent, t in self.stdout if parent == msg_id)

    def comm_msg(self, comm_id: str, data: dict) -> str:
        """Send a widget message to the comm `comm_id` (as @jupyter-widgets does); its msg_id."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
