"""The live dashboard: ipywidgets + plotly FigureWidgets fed by a Search's events.

    dash = Dashboard().attach(search)          # display(dash) shows it
    row = await dash.call(search.warmup)       # in a notebook: runs in a thread; Stop works while it waits
    result = await dash.call(search.run)
    dash.run(search); dash.wait()              # in a script: a thread, and a blocking wait

`await dash.call(...)` keeps the kernel's event loop running while the search works in its thread, so the kernel
handles the Stop button's click even when later cells are queued (Run All). A blocking wait (`wait()`,
`thread.join()`, `time.sleep`) cannot: the click would wait in the kernel's queue behind those cells. (This needs
ipykernel >= 7.4, which dispatches widget messages while a cell awaits; `cell_parents` mends a race in that.)
After Stop, `call` and `run` start nothing more unless asked with `resume=True`, so the rest of a Run All shows
the run as it stopped: `await dash.call(search.run)` then returns the run's result as it stopped (`finished:
False`), never None.

How long Stop takes: a warm-up stops after its current training step (then writes a checkpoint); a generation
stops when it ends (its fine-tuning, fair re-evaluation and selection complete), since a checkpoint holds whole
generations only. The status line says which, meanwhile.

Redraws are throttled (train_step/evaluation events at most every `min_interval` seconds; generation,
new_best and done always redraw) so a fast search never floods the browser.

While a cell awaits `call`, the figures are drawn by the kernel's event loop, not the search's thread: the search
hands each redraw over (`draw`; it updates only the progress bars and the status line itself), so every figure is
changed by one thread only, the one that also handles the browser's messages. (plotly's FigureWidget is not
thread-safe: it sends its updates as a trait set to a message and back to None, and a redraw from the search's
thread while the kernel handled a message from the same figure's view could lose the message, leaving the view
blank or stale.)
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import ipywidgets as widgets

from nasviz.runs import rundir
from nasviz.runs.events import (
    Done,
    Evaluation,
    Event,
    Generation,
    NewBest,
    Phase,
    Resumed,
    Retrained,
    TrainLog,
    TrainStep,
    from_json,
)
from nasviz.viz import figures
from nasviz.viz.cell_parents import keep_cell_parents
from nasviz.viz.common import Row
from nasviz.viz.controls import RunControls
from nasviz.viz.explorer import Explorer
from nasviz.viz.final_pick import candidates_table
from nasviz.viz.widgets import FIGURE_WIDTH, RunView, boxed, figure_widget, full_width
from nasviz.viz.widgets import row as side_by_side

_LABELS = {"warmup": "warm-up", "finetune": "fine-tune", "generations": "generations"}
_PLAIN = frozenset({"progress", "status"})
"""What `draw` updates in any thread: the progress bars and the status line (plain widgets; the figures, tables
and the explorer are drawn in the event loop's thread)."""
_PHASE_NOTES = {"warmup": "warming up the supernet (uniform path sampling)",
                "initial": "evaluating the initial population",
                "generation": "generation {generation}: offspring, fine-tuning, fair re-evaluation",
                "final": "final pick: retraining the top candidates from scratch"}


class Dashboard(RunView):
    """Progress bars, live figures, the best cells and the population table of one search."""

    def __init__(self, min_interval: float = 0.5, figure_width: int | None = FIGURE_WIDTH) -> None:
        keep_cell_parents()  # its widgets' messages between queued cells must not leave a cell at [*]
        self.min_interval = min_interval
        self.rows: list[Row] = []
        """History rows received so far (as in history.jsonl), plain Python."""
        self.events = 0
        self.errors: list[str] = []
        """Tracebacks of exceptions raised while drawing (never passed on to the search)."""
        self.search = None
        self.result: dict | None = None
        self.error: BaseException | None = None
        self._unsubscribe = None
        self._thread: threading.Thread | None = None
        self._busy = False
        self.stopped = False
        """True once Stop was pressed: `call` and `run` then start nothing (unless `resume=True`)."""
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop of the cell awaiting `call` (the kernel's): it draws, in `_loop_thread`."""
        self._loop_thread: int | None = None
        self._draw_scheduled = False
        self._force_next = False
        self._pending = TrainLog()
        self._pending_generation = 0
        self._pending_end = 0
        self._last_draw = 0.0
        self._last_plain = 0.0
        self._dirty: set[str] = set()
        self._best: str | None = None
        self._evaluations = 0
        self._status_html = ""
        self._counts: dict[str, list[int]] = {"warmup": [0, 0], "finetune": [0, 0], "generations": [0, 0]}
        super().__init__(self._controls(figure_width), figure_width)
        self.final = widgets.Box([])
        """What the search's end adds: fitness vs FLOPs of everything evaluated, with its Pareto front."""
        self.retrained: list[dict] = []
        """The final pick's candidates retrained so far (final_pick=retrain), as `Retrained` events give them."""
        self._retrain_of: int | None = None
        self.final_pick = widgets.HTML("")
        """Their table: fitness and retrain scores, the picked one marked at the end."""
        self.explorer = Explorer(figure_width)
        """The genealogy and the inspector (click an individual in any figure)."""
        self.widget.children = (*self.widget.children, self.final_pick, self.final, self.explorer.widget)

    # --- widgets ------------------------------------------------------------------------------------------
    def _controls(self, w: int | None) -> list[widgets.Widget]:
        """The title and Stop button, the progress bars and the status line (above the figures)."""

        def bar(label: str) -> widgets.IntProgress:
            return widgets.IntProgress(value=0, min=0, max=1, description=label, bar_style="info",
                                       style={"description_width": "130px"},
                                       layout=widgets.Layout(width=f"{(2 * w) // 3}px") if w else
                                       widgets.Layout(flex="1 1 300px", max_width="420px"))

        self.title = widgets.HTML("<b style='font-size:15px'>nasviz · SFT-GA search</b>")
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="danger", disabled=True,
                                          tooltip="stop: a warm-up after its current step, a generation when it ends "
                                                  "(continue later with resume=True or Search.resume)")
        self.stop_button.on_click(lambda _b: self.stop())
        self.controls = RunControls()
        """Pause / Step / Continue (`nasviz.viz.controls`), beside Stop."""
        self.progress = {name: bar(label) for name, label in _LABELS.items()}
        """The three IntProgress bars: 'warmup', 'finetune' (this generation's steps), 'generations'."""
        self.status = widgets.HTML("<i>waiting for a search</i>")
        self.status.add_class("nasviz-status")
        return [
            widgets.HBox([self.title, widgets.HBox([*self.controls.buttons, self.stop_button])],
                         layout=widgets.Layout(justify_content="space-between", max_width=full_width(w))),
            self.controls.label,
            side_by_side(*self.progress.values()),
            self.status,
        ]

    # --- search -------------------------------------------------------------------------------------------
    def attach(self, search) -> Dashboard:
        """Listen to `search`'s events (and show what its run directory already holds, e.g. after a resume)."""
        self.detach()
        self.search = search
        c = search.config
        done = c.finetune_steps if search.generation >= 1 else 0
        self._counts = {"warmup": [min(search.warmup_done, c.warmup_total), c.warmup_total],
                        "finetune": [done, c.finetune_steps],
                        "generations": [max(search.generation, 0), c.generations]}
        if not self.rows and search.run_dir is not None:
            self.rows = rundir.load_history(search.run_dir, check=True)
            if self.rows:
                self._best = self.rows[-1]["best"]["genotype"]
                self._dirty |= {"generation", "best"}
        self._pending_end = search.steps
        self._unsubscribe = search.subscribe(self.handle)
        self.controls.attach(search)
        self._note(f"attached to a {c.method} search ({c.preset} preset, seed {c.seed})")
        self._dirty.add("progress")
        self.draw()
        return self

    def detach(self) -> None:
        """Stop listening to the attached search."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def run(self, search, background: bool = True, *, resume: bool = False) -> Dashboard:
        """Run `search.run()` with this dashboard attached: in a thread (default) or here. Returns the dashboard,
        so `Dashboard().run(search)` as a cell's last line shows it; `wait()` returns the result. In a notebook
        prefer `await dash.call(search.run)`: Stop then works even while later cells are queued."""
        if self.search is not search or self._unsubscribe is None:
            self.attach(search)
        self._start(search.run, (), resume, background)
        return self

    async def call(self, fn: Callable, *args, resume: bool = False):
        """`await dash.call(search.step)`: run `fn(*args)` (`search.warmup`, `search.step`, `search.run`) in a
        thread with the Stop button enabled and return its value (re-raising its exception). The kernel keeps
        handling widget messages while the cell awaits, so Stop works under Run All. After Stop was pressed it
        does not call `fn`: for `search.run` it returns the search's result as it stopped (what `run` returns,
        `finished: False`), for the others None (what they return when stopped); `resume=True` calls it anyway
        (`await dash.call(search.run, resume=True)` continues a stopped search)."""
        owner = getattr(fn, "__self__", None)
        if owner is not None and hasattr(owner, "request_stop") and owner is not self.search:
            self.attach(owner)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (e.g. asyncio.run per call): nothing is pending on it
            self._loop, self._loop_thread, self._draw_scheduled = loop, threading.get_ident(), False
        future = self._start(fn, args, resume, background=True)
        return None if future is None else await asyncio.wrap_future(future)

    def _start(self, fn: Callable, args: tuple, resume: bool, background: bool) -> Future | None:
        if self._busy:
            raise RuntimeError("a search is already running in this dashboard; wait() or stop() it first")
        if self._thread is not None:
            self._thread.join()  # its work is done (a call awaiting it may resume before the thread has ended)
        if self.stopped and not resume:
            self._note(self._stopped_text() + " (Stop was pressed: not continuing; resume=True continues)")
            self.draw()
            if self._is_run(fn):  # the run as it stopped, so the cells after `result = ...` work
                self.result = self.search.result()
                future = Future()
                future.set_result(self.result)
                return future
            return None
        self.stopped = False
        self.error = None
        if getattr(fn, "__name__", "") == "run":
            self.result = None
        future: Future = Future()
        self._busy = True
        self.stop_button.disabled = self.search is None
        self.controls.running(self.search is not None)
        if background:
            self._thread = threading.Thread(target=self._work, args=(fn, args, future), name="nasviz-search",
                                            daemon=True)
            self._thread.start()
        else:
            self._work(fn, args, future)
        return future

    def _is_run(self, fn: Callable) -> bool:
        """Whether `fn` is the attached search's `run`."""
        return self.search is not None and getattr(fn, "__self__", None) is self.search and \
            getattr(fn, "__name__", "") == "run"

    def _work(self, fn: Callable, args: tuple, future: Future) -> None:
        value, error = None, None
        try:
            value = fn(*args)
            if getattr(fn, "__name__", "") == "run":
                self.result = value
        except BaseException as exc:  # shown, and re-raised by wait() and call()
            error = self.error = exc
            self._note(f"<span style='color:#c00'>search failed: {html.escape(repr(exc))}</span>", raw=True)
        finally:
            self._busy = False
            self.stop_button.disabled = True
            self.controls.running(False)
            unfinished = isinstance(value, dict) and value.get("finished") is False
            if error is None and (self.stopped or unfinished) and not getattr(self.search, "done", False):
                self._note(self._stopped_text() + "; the cells below show the run so far. Continue with "
                           "await dash.call(search.run, resume=True), or later with Search.resume(run_dir)")
            try:
                self.draw(force=True)
            except Exception:  # a drawing bug must never keep the awaiting cell from getting the result
                self.errors.append(traceback.format_exc())
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def _stopped_text(self) -> str:
        search = self.search
        if search is None:
            return "stopped"
        if getattr(search, "generation", 0) < 0:
            return (f"stopped during the warm-up, after {search.warmup_done}/{search.config.warmup_total} "
                    "supernet steps")
        return f"stopped after generation {search.generation}"

    def _stopping_text(self) -> str:
        """What the status line says between a click on Stop and the stop: when it will take effect."""
        search = self.search
        if search is None or not self._busy:
            return ""
        if search.generation < 0 and search.warmup_done < search.config.warmup_total:
            return "<b>Stop pressed</b>: stopping after this warm-up step · "
        if search.generation < 0:
            return "<b>Stop pressed</b>: stopping after the initial population is evaluated · "
        return (f"<b>Stop pressed</b>: stopping after generation {search.generation + 1} (when its fine-tuning "
                "and re-evaluation end) · ")

    def stop(self) -> None:
        """Ask the search to stop (what the Stop button does): a running warm-up stops after its current training
        step, a generation when it ends. Later `call`s and `run`s start nothing, so the rest of a Run All shows
        the run as it stopped."""
        if self.search is None:
            return
        self.stop_button.disabled = True
        if getattr(self.search, "done", False):
            return  # a click that arrived after the search finished: nothing to stop, keep the status
        self.stopped = True
        if self._busy:
            self.search.request_stop()
        else:
            self._note(self._stopped_text())
        self.controls.resume()  # a paused search goes on to see the stop, and a later run does not pause
        self.draw()

    def wait(self, timeout: float | None = None) -> dict | None:
        """Block until a background `run` ends; returns its result (re-raises its exception). In a notebook use
        `await dash.call(search.run)` instead: a blocking wait keeps the kernel from handling the Stop button."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- events -------------------------------------------------------------------------------------------
    def handle(self, event: Event | dict[str, Any]) -> None:
        """Take one engine event (what `Search.subscribe` delivers; events.jsonl lines work too). Never raises."""
        try:
            with self._lock:
                if self.stopped and self.running and self.search is not None:
                    self.search.request_stop()  # again: Search.run() forgets a request made just before it began
                self._handle(from_json(event) if isinstance(event, dict) else event)
        except Exception as exc:  # a drawing bug must never stop the search
            self.errors.append(traceback.format_exc())
            self.status.value = f"<span style='color:#c00'>dashboard error: {html.escape(repr(exc))}</span>"

    def _handle(self, event: Event) -> None:
        self.events += 1
        force = False  # what changes the figures' data redraws at once; the rest waits for `min_interval`
        match event:
            case TrainStep(phase=phase, generation=gen, step=step, of=of):
                if gen != self._pending_generation or (phase == "finetune" and step == 0):
                    self._pending, self._pending_generation = TrainLog(), gen
                self._pending.add(event)
                self._counts["warmup" if phase == "warmup" else "finetune"] = [step + 1, of]
                base = 0 if phase == "warmup" else (self.rows[-1]["supernet_steps"] if self.rows else 0)
                self._pending_end = base + step + 1
                self._dirty |= {"progress", "training"}
                self._note(f"{'warm-up' if phase == 'warmup' else f'generation {gen}: fine-tuning'}"
                           f" step {step + 1}/{of}, loss {event.loss:.3f}")
            case Evaluation():
                self._evaluations += 1
                stage = "before fine-tuning" if event.stage == "before" else "with current weights"
                self._note(f"generation {event.generation}: evaluated {event.role} {stage}, "
                           f"fitness {event.fitness:.4f} ({self._evaluations} evaluations)")
                self._dirty.add("progress")
            case Phase(phase=phase):
                if phase == "generation":
                    self._counts["finetune"][0] = 0
                if phase in _PHASE_NOTES:
                    self._note(_PHASE_NOTES[phase].format(generation=event.generation))
                self._dirty.add("progress")
                force = True
            case Generation():
                self._add_row(event.row())
                force = True
            case NewBest():
                self._best = event.genotype
                self._dirty.add("best")
                force = True
            case Done(result=result):
                self.result = dict(result)
                self._note(f"done: best fitness {result.get('best_fitness')}, "
                           f"{result.get('search_wall_time_s', 0):.1f} s search time")
                self.stop_button.disabled = True
                self._dirty |= {"progress", "final"}
                force = True
            case Retrained():
                self.retrained = [r for r in self.retrained if r["genotype"] != event.genotype] + [
                    {"genotype": event.genotype, "fitness": event.fitness, "retrain_scores": event.scores}]
                self._retrain_of = event.of
                self._note(f"final pick: retrained candidate {event.index}/{event.of}, score "
                           f"{sum(event.scores) / len(event.scores):.4f}")
                self._dirty.add("final_pick")
                force = True
            case Resumed():
                self._note("resumed from checkpoint")
                self._dirty.add("progress")
        self.draw(force=force)

    def _add_row(self, row: Row) -> None:
        paths = self._pending.paths if self._pending_generation == row["generation"] else []
        if len(paths) != len(row.get("train_loss", ())):
            paths = self._paths_from_history(row["generation"]) or paths
        row["trained_paths"] = list(paths)
        before = [r for r in self.rows if r["generation"] == row["generation"] - 1]
        self.rows = [r for r in self.rows if r["generation"] < row["generation"]] + [row]
        self._pending = TrainLog()
        self._pending_generation = row["generation"] + 1
        self._pending_end = row["supernet_steps"]
        self._counts["generations"][0] = row["generation"]
        fell = bool(before) and row["best"]["fitness"] < before[0]["best"]["fitness"]
        self._note(f"generation {row['generation']} done: best {row['best']['fitness']:.4f}, "
                   f"mean {row['mean_fitness']:.4f}, {row['evaluations']} evaluations"
                   + (f" · the best fell from {before[0]['best']['fitness']:.4f}: every individual, the old best "
                      "too, is re-evaluated under this generation's fine-tuned weights, and those can score it "
                      "lower" if fell else ""))
        self._dirty |= {"generation", "training", "progress"}

    def _paths_from_history(self, generation: int) -> list[str]:
        """A generation's trained paths from history.jsonl (when the dashboard missed some train_step events)."""
        run_dir = getattr(self.search, "run_dir", None)
        if run_dir is None:
            return []
        for row in rundir.load_history(run_dir):
            if row["generation"] == generation:
                return row.get("trained_paths", [])
        return []

    # --- drawing ------------------------------------------------------------------------------------------
    def _partial_rows(self) -> list[Row]:
        """The rows plus, while a generation is training, a partial row with its steps so far."""
        if not self._pending.paths:
            return self.rows
        partial = {"generation": self._pending_generation, "supernet_steps": self._pending_end,
                   "trained_paths": self._pending.paths, "train_loss": self._pending.loss,
                   "train_accuracy": self._pending.accuracy}
        return [r for r in self.rows if r["generation"] < partial["generation"]] + [partial]

    def _note(self, text: str, raw: bool = False) -> None:
        """Set the status line (shown at the next draw)."""
        with self._lock:
            self._status_html = text if raw else html.escape(text)
            self._dirty.add("status")

    def draw(self, force: bool = True) -> None:
        """Redraw what changed; unless `force`, at most once every `min_interval` seconds. From another thread than
        that of the event loop of a cell awaiting `call`, the redraw is handed to that loop (one at a time)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread or loop.is_closed() or not loop.is_running():
            self._draw_here(force)
            return
        self._draw_here(force, plain_only=True)  # plain widgets (they send no messages back): at once
        with self._lock:
            self._force_next = self._force_next or force
            if self._draw_scheduled:
                return
            self._draw_scheduled = True
        try:
            loop.call_soon_threadsafe(self._draw_handed_over)
        except RuntimeError:  # the loop closed meanwhile
            self._draw_handed_over()

    def _draw_handed_over(self) -> None:
        with self._lock:
            force, self._force_next, self._draw_scheduled = self._force_next, False, False
        try:
            self._draw_here(force)
        except Exception as exc:  # as `handle`: a drawing bug never reaches the kernel's loop
            self.errors.append(traceback.format_exc())
            self.status.value = f"<span style='color:#c00'>dashboard error: {html.escape(repr(exc))}</span>"

    def _draw_here(self, force: bool, plain_only: bool = False) -> None:
        """Redraw what changed, in this thread (`plain_only`: only the progress bars and the status line)."""
        now = time.monotonic()
        if not force and now - (self._last_plain if plain_only else self._last_draw) < self.min_interval:
            return
        with self._lock:
            if plain_only:
                self._last_plain = now
                dirty = self._dirty & _PLAIN
                self._dirty -= _PLAIN
            else:
                self._last_draw = self._last_plain = now
                dirty, self._dirty = self._dirty, set()
            if "progress" in dirty:
                for name, (value, total) in self._counts.items():
                    total = max(total, value)  # without a search attached, totals come from the events
                    bar = self.progress[name]
                    bar.max = max(total, 1)
                    bar.value = min(value, bar.max)
                    bar.description = f"{_LABELS[name]} {value}/{total}"
            if "status" in dirty or self.stopped:
                pending = self.stopped and self._busy
                self.status.value = (self._stopping_text() if pending else "") + self._status_html
            if plain_only:
                return
            if "training" in dirty or "generation" in dirty:
                rows = self._partial_rows()
                self.draw_figure("training_curves", figures.training_curves_figure(rows))
                self.draw_figure("op_frequency", figures.op_frequency_figure(rows))
            if "generation" in dirty:
                self.draw_figure("fitness", figures.fitness_figure(self.rows))
                self.draw_figure("before_after", figures.before_after_figure(self.rows))
                self.show_population(self.rows, self.rows[-1] if self.rows else None)
                self.explorer.update(self.rows)
                self.explorer.connect([*self.figures.values(), *filter(None, [self.show_truth(self.rows)])])
            if "final_pick" in dirty or ("final" in dirty and self.result and "final_pick" in self.result):
                block = (self.result or {}).get("final_pick")
                self.final_pick.value = candidates_table(block["candidates"], block["picked"]) if block else \
                    candidates_table(self.retrained, of=self._retrain_of)
            if "final" in dirty:
                fig = figures.fitness_vs_flops_figure(self.rows)
                final = figure_widget(fig, self.figure_width)
                self.final.children = [boxed(final, self.figure_width)]
                self.explorer.connect([final])
            if "best" in dirty:
                fitness = next((r["best"]["fitness"] for r in reversed(self.rows)
                                if r["best"]["genotype"] == self._best), None)
                self.show_best(self._best, "Best cells" + (f" (fitness {fitness:.4f})" if fitness is not None else ""))
