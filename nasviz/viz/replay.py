"""Replay a recorded (running or finished) search generation by generation with a slider.

    replay = Replay("runs/q0")   # shows itself as a notebook cell's last line
    replay.show(3)              # or drag the slider; replay.state holds what is shown, as plain Python
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as widgets

from nasviz.runs import rundir
from nasviz.viz import figures
from nasviz.viz.common import Row
from nasviz.viz.explorer import Explorer
from nasviz.viz.widgets import FIGURE_WIDTH, RunView


class Replay(RunView):
    """A slider over the generations of `run_dir`'s history.jsonl; `refresh()` re-reads a growing file."""

    def __init__(self, run_dir: str | Path, generation: int | None = None,
                 figure_width: int | None = FIGURE_WIDTH) -> None:
        self.run_dir = Path(run_dir)
        self.rows: list[Row] = []
        self.state: dict[str, Any] = {"generation": None}
        """What is shown, as plain Python: generation, population, fitness, params, best_genotype, ..."""
        self.slider = widgets.IntSlider(value=0, min=0, max=0, description="generation", continuous_update=False,
                                        layout=widgets.Layout(width="60%"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="re-read history.jsonl (for a running search)")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.info = widgets.HTML()
        super().__init__([widgets.HBox([self.slider, self.refresh_button]), self.info], figure_width)
        self.explorer = Explorer(figure_width)
        """The genealogy of the generation shown and the inspector (click an individual in any figure)."""
        self.widget.children = (*self.widget.children, self.explorer.widget)
        self.slider.observe(self._on_slider, names="value")
        self.refresh()
        if generation is not None:
            self.show(generation)

    @property
    def generations(self) -> list[int]:
        return [r["generation"] for r in self.rows]

    def refresh(self) -> Replay:
        """Re-read history.jsonl; if the slider was on the last generation, follow the new last one."""
        following = not self.rows or self.slider.value >= len(self.rows) - 1
        self.rows = rundir.load_history(self.run_dir, check=True)
        if not self.rows:
            self.slider.disabled = True
            self.state = {"generation": None}
            self.info.value = f"<i>{self.run_dir}: no generation recorded yet</i>"
            return self
        self.slider.disabled = False
        self.slider.max = len(self.rows) - 1
        target = len(self.rows) - 1 if following else min(self.slider.value, len(self.rows) - 1)
        self.show(target)
        return self

    def show(self, generation: int) -> Replay:
        """Show generation `generation` (negative: from the end), as moving the slider there does."""
        if not self.rows:
            raise ValueError(f"{self.run_dir} has no recorded generation yet")
        index = self._index(generation)
        if self.slider.value != index:
            self.slider.value = index  # the observer draws
        else:
            self._draw(index)
        return self

    def _index(self, generation: int) -> int:
        gens = self.generations
        if generation < 0:
            generation = gens[generation] if -generation <= len(gens) else gens[0] - 1
        if generation not in gens:
            raise ValueError(f"generation {generation} is not recorded; recorded: {gens[0]}..{gens[-1]}")
        return gens.index(generation)

    def _on_slider(self, change: dict) -> None:
        if self.rows:
            self._draw(change["new"])

    def _draw(self, index: int) -> None:
        row = self.rows[index]
        g = row["generation"]
        rows_so_far = self.rows[: index + 1]
        self.state = {
            "generation": g,
            "population": list(row["population"]),
            "fitness": list(row["fitness"]),
            "params": list(row["params"]),
            "best_genotype": row["best"]["genotype"],
            "best_fitness": row["best"]["fitness"],
            "mean_fitness": row["mean_fitness"],
            "supernet_steps": row["supernet_steps"],
            "evaluations": row["evaluations"],
            "trained_paths": len(row.get("trained_paths", ())),
            "individuals": len(row["individuals"]),
        }
        self.draw_figure("fitness", figures.fitness_figure(self.rows, highlight=g))
        self.draw_figure("before_after", figures.before_after_figure(rows_so_far, g if g >= 1 else None))
        self.draw_figure("op_frequency", figures.op_frequency_figure(rows_so_far, g if g >= 1 else None))
        self.draw_figure("training_curves", figures.training_curves_figure(rows_so_far))
        self.show_population(self.rows, row)
        self.explorer.update(rows_so_far, g)
        self.explorer.connect([*self.figures.values(), *filter(None, [self.show_truth(rows_so_far, g)])])
        self.show_best(row["best"]["genotype"], f"Best cells of generation {g} (fitness {row['best']['fitness']:.4f})")
        phase = "warm-up" if g == 0 else "fine-tuning"
        self.info.value = (f"generation <b>{g}</b> of {self.generations[-1]}: {row['supernet_steps']} supernet steps "
                           f"({len(row.get('trained_paths', ()))} in this {phase}), {row['evaluations']} evaluations, "
                           f"best {row['best']['fitness']:.4f}, mean {row['mean_fitness']:.4f}")
