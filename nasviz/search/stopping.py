"""When a running search stops: `StopSwitch` holds a stop request (`Search.request_stop`: Ctrl-C in the command
line, the dashboard's Stop button) and says when `Search.run` honours it.

With one process a request counts at once: a warm-up stops after its current training step, a generation when it
ends. With several, the processes agree at every checkpoint whether any of them was asked, so that all stop at the
same point (a request since the last checkpoint counts at the next).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nasviz.train.distributed import Ranks


class StopSwitch:
    """The stop request of one search running on `ranks`."""

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks
        self.requested = False
        """Whether a stop was asked on this process since `run()` began."""
        self._agreed = False  # with several processes: whether any asked to stop, as of the last checkpoint
        self.checkpoint_requested = False
        """Whether the warm-up ends its current chunk after the current step, with a checkpoint (a pause);
        cleared when that checkpoint is written."""

    def request(self) -> None:
        self.requested = True

    def request_checkpoint(self) -> None:
        self.checkpoint_requested = True

    def reset(self) -> None:
        """A new `run()` begins: no stop asked."""
        self.requested = self._agreed = False

    def agree(self) -> None:
        """At a checkpoint: a checkpoint request is met; with several processes, every one learns whether any was
        asked to stop (all stop here, or none)."""
        self.checkpoint_requested = False
        if self.ranks.size > 1:
            self._agreed = self.ranks.any(self.requested)

    def stopping(self) -> bool:
        """Whether `run()` stops now."""
        return self.requested if self.ranks.size == 1 else self._agreed

    def within_chunk(self) -> Callable[[], bool] | None:
        """What may cut a warm-up chunk short after any training step: a stop or checkpoint request, with one
        process; nothing with several (they stop together, at a checkpoint)."""
        if self.ranks.size > 1:
            return None
        return lambda: self.stopping() or self.checkpoint_requested
