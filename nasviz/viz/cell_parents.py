"""Keep each cell's replies addressed to that cell while widget messages arrive between cells (ipykernel 7.4).

ipykernel >= 7.4 handles a widget message (`comm_msg`) while a cell awaits, which is what lets Stop work under
Run All. It then puts back the request it was serving when the message arrived, as the kernel's current "parent".
When a queued cell has started in between (the message came as one cell ended and the next began), that put-back
is the previous cell's request: the new cell's closing "idle" status goes out under the old cell's id, and
JupyterLab shows the new cell as running, `[*]`, for ever, though it finished and the cells after it ran. A
dashboard makes this likely: it redraws its figures as a search call ends, and their views answer with messages
just as the next queued cell starts (seen in about one Run All in five of notebook 03 on a 2-core machine).

`keep_cell_parents()` wraps two methods of the running kernel (`dispatch_shell`, `set_parent`) so that while the
kernel serves a request in order (a cell, not a widget message handled beside it), putting back a parent puts back
that request. Nothing else changes: widget messages still get their own parent while they are handled.
`tests/test_cell_parents.py` shows the loss without it and none with it, in a real kernel.
"""

from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any

_STARTING = object()
"""A request is being dispatched and has not named its parent yet."""

_SERVING: ContextVar[Any] = ContextVar("nasviz_serving", default=None)
"""In the kernel's request context: None, `_STARTING`, or (ident, parent) of the request served in order."""


def running_kernel() -> Any | None:
    """The ipykernel kernel this code runs in, or None (a plain Python process, a terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def keep_cell_parents(kernel: Any | None = None) -> bool:
    """Install the fix on `kernel` (default: the running one). Returns whether it was installed now: False outside
    a kernel, when already installed, or for a kernel without ipykernel 7's concurrent `dispatch_shell`."""
    kernel = kernel if kernel is not None else running_kernel()
    if kernel is None or getattr(kernel, "_nasviz_keeps_cell_parents", False):
        return False
    dispatch, set_parent = getattr(kernel, "dispatch_shell", None), getattr(kernel, "set_parent", None)
    if dispatch is None or set_parent is None or "concurrent" not in inspect.signature(dispatch).parameters:
        return False

    async def dispatch_shell(msg, /, subshell_id: str | None = None, *, concurrent: bool = False):
        # a widget message handled beside a cell runs in a copy of the context: it serves no request in order
        token = _SERVING.set(None if concurrent else _STARTING)
        try:
            return await dispatch(msg, subshell_id=subshell_id, concurrent=concurrent)
        finally:
            _SERVING.reset(token)

    def set_parent_kept(ident, parent, channel: str = "shell"):
        serving = _SERVING.get()
        if channel == "shell" and serving is _STARTING:
            _SERVING.set((ident, parent))  # the request names itself first
        elif channel == "shell" and serving is not None:
            ident, parent = serving  # a put-back while a request is served: that request
        return set_parent(ident, parent, channel)

    kernel.dispatch_shell = dispatch_shell
    kernel.set_parent = set_parent_kept
    kernel._nasviz_keeps_cell_parents = True
    return True
