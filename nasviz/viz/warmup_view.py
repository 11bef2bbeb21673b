"""The live view of a supernet warm-up alone (notebook 02): what runs, its progress, the training curves and the
operations the warm-up trained — none of the search's panels (generations, before/after, population), which
would stay empty.

    view = WarmupView().attach(search)   # display(view) shows it
    row = search.warmup()                # the view follows the warm-up and the initial population
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets

from nasviz.runs.events import Evaluation, Event, Generation, Phase, TrainLog, TrainStep, from_json
from nasviz.viz import figures
from nasviz.viz.partial import warmup_row
from nasviz.viz.widgets import FIGURE_WIDTH, boxed, figure_widget, full_width, sync
from nasviz.viz.widgets import row as side_by_side


class WarmupView:
    """Progress bars (warm-up steps, initial population), a status line saying what runs, and two live figures."""

    def __init__(self, min_interval: float = 0.5, figure_width: int | None = FIGURE_WIDTH) -> None:
        self.min_interval, self.figure_width = min_interval, figure_width
        self.log = TrainLog()
        self.row: dict | None = None
        """Generation 0's history row once the initial population is evaluated."""
        self._steps = self._population = 0
        self._last = 0.0
        self._unsubscribe = None
        self.title = widgets.HTML("<b style='font-size:15px'>nasviz · supernet warm-up</b>")
        self.progress = {name: widgets.IntProgress(value=0, min=0, max=1, description=name, bar_style="info",
                                                   style={"description_width": "170px"},
                                                   layout=widgets.Layout(flex="1 1 300px", max_width="460px"))
                         for name in ("warm-up", "initial population")}
        self.status = widgets.HTML("<i>waiting for the warm-up to start</i>")
        self.status.add_class("nasviz-status")
        self.figures = {"training_curves": figure_widget(figures.training_curves_figure([]), figure_width),
                        "op_frequency": figure_widget(figures.op_frequency_figure([], warmup_only=True),
                                                      figure_width)}
        boxes = [boxed(f, figure_width) for f in self.figures.values()]
        self.widget = widgets.VBox([self.title, side_by_side(*self.progress.values()), self.status,
                                    side_by_side(*boxes)], layout=widgets.Layout(max_width=full_width(figure_width)))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def attach(self, search) -> WarmupView:
        """Follow `search`'s events (its warm-up and initial population)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        c = search.config
        self._steps, self._population = c.warmup_total, c.population
        self._set("warm-up", search.warmup_done, c.warmup_total)
        self._set("initial population", 0, c.population)
        self._say(f"ready: {c.warmup_total} warm-up steps (one uniformly sampled path each), then {c.population} "
                  "random genotypes evaluated with inherited weights")
        self._unsubscribe = search.subscribe(self.handle)
        return self

    def handle(self, event: Event | dict) -> None:
        """Take one engine event; never raises into the search."""
        try:
            self._handle(from_json(event) if isinstance(event, dict) else event)
        except Exception as exc:  # a drawing bug must never stop the warm-up
            self.status.value = f"<span style='color:#c00'>view error: {html.escape(repr(exc))}</span>"

    def _handle(self, event: Event) -> None:
        match event:
            case TrainStep(phase="warmup", step=step, of=of):
                self.log.add(event)
                self._set("warm-up", step + 1, of)
                self._say(f"warming up the supernet: step {step + 1}/{of} trains one uniformly sampled path, "
                          f"loss {event.loss:.3f}")
                self._draw(force=step + 1 == of)
            case Phase(phase="initial"):
                self._say(f"warm-up done; evaluating the initial population ({self._population} random genotypes, "
                          "inherited weights, BatchNorm recalibrated per path)")
                self._draw(force=True)
            case Evaluation(generation=0, role="initial"):
                done = self.progress["initial population"].value + 1
                self._set("initial population", done, self._population)
                self._say(f"evaluating the initial population: {done}/{self._population}, last fitness "
                          f"{event.fitness:.4f}")
            case Generation(generation=0):
                self.row = event.row()
                self._say(f"done: {self._steps} warm-up steps, initial population best fitness "
                          f"{self.row['best']['fitness']:.4f}, mean {self.row['mean_fitness']:.4f}")
                self._draw(force=True)

    def _set(self, name: str, value: int, total: int) -> None:
        bar = self.progress[name]
        bar.max = max(total, 1)
        bar.value = min(value, bar.max)
        bar.description = f"{name} {value}/{total}"

    def _say(self, text: str) -> None:
        self.status.value = html.escape(text)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        rows = [warmup_row(self.log.paths, self.log.loss, self.log.accuracy, len(self.log))]
        sync(self.figures["training_curves"], figures.training_curves_figure(rows), self.figure_width)
        sync(self.figures["op_frequency"], figures.op_frequency_figure(rows, warmup_only=True), self.figure_width)
