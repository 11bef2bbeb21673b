"""Pause / Step / Continue for a search running in a thread (the dashboard shows them beside Stop).

Pause takes effect when the current generation ends: the search has written that generation's history row and its
checkpoint, then waits (its thread blocks inside the checkpoint event) until Step (one more generation, then paused
again) or Continue (to the end). During the warm-up it takes effect after the current training step: the search
writes a checkpoint there (`Search.request_checkpoint`) and waits the same way; Step then runs the rest of the
warm-up and generation 0 (the initial population), Continue to the end. Stop also ends a pause: the search then
stops right there. Pausing only delays the search: every random draw and every step is the same, so a paused run
ends exactly as an uninterrupted one.

The buttons' clicks are widget messages; while a cell awaits `dash.call(...)` the kernel handles them even with
later cells queued (Run All), as it does Stop's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import ipywidgets as widgets

from nasviz.runs.events import Checkpoint, Done, Event


class RunControls:
    """The Pause, Step and Continue buttons and the pause itself, for one search at a time (`attach`)."""

    def __init__(self) -> None:
        self.pause_button = widgets.Button(description="Pause", icon="pause", disabled=True,
                                           tooltip="pause when the current generation ends (it is checkpointed)")
        self.step_button = widgets.Button(description="Step", icon="step-forward", disabled=True,
                                          tooltip="run exactly one more generation, then pause again")
        self.continue_button = widgets.Button(description="Continue", icon="play", disabled=True,
                                              tooltip="run to the end")
        self.pause_button.on_click(lambda _b: self.pause())
        self.step_button.on_click(lambda _b: self.step())
        self.continue_button.on_click(lambda _b: self.resume())
        self.label = widgets.HTML("")
        self.label.add_class("nasviz-pause")
        self.buttons = [self.pause_button, self.step_button, self.continue_button]
        self.paused = False
        """Whether the search waits (or will wait) at the end of the current generation."""
        self.waiting_at: int | None = None
        """The generation after which the search is waiting now (-1: in the warm-up; None: it is not waiting)."""
        self.waiting_step: int | None = None
        """While it waits in the warm-up: the warm-up steps done."""
        self._allowance = 0  # generations still to run before pausing (Step)
        self._cond = threading.Condition()
        self._search = None
        self._unsubscribe: Callable[[], None] | None = None
        self._running = False

    def attach(self, search) -> None:
        """Control `search` (listening to its checkpoints)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._search = search
        self._unsubscribe = search.subscribe(self._on_event)
        self._refresh()

    # --- what the buttons do ------------------------------------------------------------------------------
    def pause(self) -> None:
        """Pause when the current generation ends (in the warm-up: after the current training step)."""
        with self._cond:
            self.paused, self._allowance = True, 0
            self._cond.notify_all()
        self._cut_warmup()
        self._refresh()

    def step(self) -> None:
        """While paused: run exactly one more generation, then pause again (paused in the warm-up: the rest of it
        and generation 0). While running: pause as Pause does."""
        with self._cond:
            waiting = self.waiting_at is not None
            self._allowance = 1 if waiting else 0
            self.paused = True
            self.waiting_at = self.waiting_step = None  # going on: the next wait is a new pause
            self._cond.notify_all()
        if not waiting:
            self._cut_warmup()
        self._refresh()

    def resume(self) -> None:
        """Continue to the end."""
        with self._cond:
            self.paused, self._allowance = False, 0
            self.waiting_at = self.waiting_step = None
            self._cond.notify_all()
        self._refresh()

    def wake(self) -> None:
        """Let a waiting search go on to see a stop request (what Stop does)."""
        with self._cond:
            self._cond.notify_all()

    def running(self, running: bool) -> None:
        """Tell the controls whether a search call is under way (the dashboard does)."""
        self._running = running
        if not running:
            with self._cond:
                self.waiting_at = self.waiting_step = None
        elif self.paused and not self._allowance:
            self._cut_warmup()  # paused before the search started: in a warm-up, after its first step
        self._refresh()

    def wait_until_paused(self, beyond: int = -1, timeout: float | None = None) -> int | None:
        """Block until the search waits at the end of a generation after `beyond` (`beyond=-2`: a pause in the
        warm-up counts too, as generation -1); returns that generation (None on timeout). For scripts and tests;
        in a notebook the buttons say it."""
        with self._cond:
            self._cond.wait_for(lambda: self.waiting_at is not None and self.waiting_at > beyond, timeout)
            return self.waiting_at if self.waiting_at is not None and self.waiting_at > beyond else None

    # --- the search's side ----------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """In the search's thread: at a checkpoint (a generation's, or the warm-up's), wait while paused (not after
        the last generation). Step's allowance counts generations: the warm-up's checkpoints leave it."""
        if isinstance(event, Done):
            self.running(False)
            return
        if not isinstance(event, Checkpoint):
            return
        search = self._search
        if search is None or getattr(search, "done", False):
            return
        warmup = event.generation < 0
        with self._cond:
            if self._allowance and not warmup:
                self._allowance -= 1
            if not self.paused or self._allowance or self._stopping():
                return
            self.waiting_at = event.generation
            self.waiting_step = event.warmup_done if warmup else None
            self._cond.notify_all()
        self._refresh()
        with self._cond:
            self._cond.wait_for(lambda: not self.paused or self._allowance > 0 or self._stopping())
            self.waiting_at = self.waiting_step = None
            self._cond.notify_all()
        self._refresh()

    def _cut_warmup(self) -> None:
        """A running warm-up: ask it to checkpoint after its current step, so that the pause holds there."""
        search = self._search
        if search is not None and self._running and getattr(search, "generation", 0) < 0 \
                and hasattr(search, "request_checkpoint"):
            search.request_checkpoint()

    def _stopping(self) -> bool:
        return bool(getattr(self._search, "stop_requested", False))

    def _refresh(self) -> None:
        """Enable the buttons that make sense now, and say what the pause is doing."""
        waiting, live = self.waiting_at is not None, self._running
        self.pause_button.disabled = not live or self.paused
        self.step_button.disabled = not live or (self.paused and not waiting)
        self.continue_button.disabled = not live or not self.paused
        if waiting and self.waiting_at < 0:
            total = getattr(getattr(self._search, "config", None), "warmup_total", None)
            text = (f"<b>paused</b> in the warm-up after step {self.waiting_step}" + (f"/{total}" if total else "")
                    + " (checkpointed): Step runs the rest of the warm-up and generation 0, Continue runs to the end")
        elif waiting:
            text = (f"<b>paused</b> after generation {self.waiting_at} (checkpointed): Step runs one more, "
                    "Continue runs to the end")
        elif live and self.paused:
            warming = getattr(self._search, "generation", 0) < 0 and \
                getattr(self._search, "warmup_done", 0) < getattr(getattr(self._search, "config", None),
                                                                   "warmup_total", 0)
            text = "pausing after this warm-up step" if warming else "pausing when this generation ends"
        else:
            text = ""
        self.label.value = text
