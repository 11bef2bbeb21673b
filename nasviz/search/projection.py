"""The projected work of a search, said before it starts when it would take longer than a day on this machine.

Every setting may be inside its documented range while their product is not (`population=10000
generations=1000000` would run for centuries). The estimate is deliberately simple, a model rather than a
measurement:

    work = training steps x seconds per step + evaluations x seconds per evaluation
    training steps = warm-up steps (`warmup_total`) + generations x finetune_steps (when the search fine-tunes)
    evaluations    = population x (generations + 1), plus population x generations for each of re-evaluating
                     parents and recording the fitness before fine-tuning (when the search fine-tunes)

A step costs `batch_size` training images, an evaluation `fitness_images` plus `bn_batches` x `batch_size`
inference images. The seconds per image were measured with the quick preset on an idle 2-core CPU (2 torch
threads): 400 warm-up steps in ~97 s and ~25.5 s per generation (benchmarks/results/
quick-search_eval-throughput_full_threads2_idle.jsonl), i.e. ~3.4 ms per training image and ~0.6 ms per
inference image at channels=8, layers=5 and 28x28 pixels. They scale with channels squared, layers, pixels and
1/threads; on a GPU they are divided by `GPU_SPEEDUP`, a rough guess. With fitness from a table there is no
training and an evaluation is a lookup (`TABLE_EVALUATION_S`). The figure is right within a factor of a few,
enough to tell minutes from days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasviz.search.fitness_sources import SOURCES

if TYPE_CHECKING:
    from nasviz.search.config import SearchConfig

TRAIN_IMAGE_S = 3.4e-3
"""Seconds per training image (forward and backward) of the reference network on the reference CPU."""
EVAL_IMAGE_S = 0.6e-3
"""Seconds per inference image (fitness and BatchNorm recalibration) of the reference network there."""
REFERENCE = {"channels": 8, "layers": 5, "pixels": 28 * 28, "threads": 2}
"""The network and CPU of those measurements."""
GPU_SPEEDUP = 30.0
"""A CUDA device is taken as this many times faster than the reference CPU (a rough guess, not measured)."""
TABLE_EVALUATION_S = 1e-3
"""Seconds per evaluation when fitness comes from a table (breeding, a lookup, the history row)."""
DAY_S = 24 * 3600.0
"""Projected work above this is said before the search starts."""


@dataclass(frozen=True)
class Projection:
    """A search's projected work: supernet training steps, evaluations and seconds (a model, see the module)."""

    steps: int
    evaluations: int
    seconds: float
    per_generation_s: float
    fixed_s: float
    """The warm-up and the evaluation of the initial population."""

    def generations_in(self, seconds: float) -> int:
        """How many generations fit in `seconds` after the warm-up."""
        return max(0, int((seconds - self.fixed_s) // self.per_generation_s)) if self.per_generation_s > 0 else 0


def project(config: SearchConfig, pixels: int, threads: int, cuda: bool = False) -> Projection:
    """The projected work of the whole search `config`, on images of `pixels` pixels, with `threads` CPU threads
    (or on a CUDA device)."""
    c, ref = config, REFERENCE
    finetune = c.uses_finetune
    steps_per_generation = c.finetune_steps if finetune else 0
    evaluations_per_generation = c.population * (1 + (int(c.reevaluate_parents) + int(c.record_before)) * finetune)
    if SOURCES[c.fitness].needs_table:  # a lookup: no training
        step_s, evaluation_s = 0.0, TABLE_EVALUATION_S
    else:
        scale = (c.channels / ref["channels"]) ** 2 * c.layers / ref["layers"] * pixels / ref["pixels"]
        scale /= GPU_SPEEDUP if cuda else max(1, threads) / ref["threads"]
        step_s = c.batch_size * TRAIN_IMAGE_S * scale
        evaluation_s = (c.fitness_images + c.bn_batches * c.batch_size) * EVAL_IMAGE_S * scale
    fixed = c.warmup_total * step_s + c.population * evaluation_s
    per_generation = steps_per_generation * step_s + evaluations_per_generation * evaluation_s
    return Projection(steps=c.warmup_total + c.generations * steps_per_generation,
                      evaluations=c.population + c.generations * evaluations_per_generation,
                      seconds=fixed + c.generations * per_generation, per_generation_s=per_generation, fixed_s=fixed)


def long_search_note(config: SearchConfig, pixels: int, threads: int, cuda: bool = False) -> str | None:
    """One line saying the projected work and how to cap it, when it exceeds a day; None otherwise."""
    p = project(config, pixels, threads, cuda)
    if p.seconds <= DAY_S:
        return None
    where = "a CUDA device" if cuda else f"this CPU with {threads} thread{'s' * (threads != 1)}"
    fits = p.generations_in(DAY_S)
    cap = (f"generations={fits} fits in about a day" if fits else
           f"even the warm-up and the first {config.population} evaluations take over a day: lower warmup_steps, "
           "population or the network size")
    return (f"nasviz: warning: projected work {p.steps:,} supernet training steps and {p.evaluations:,} evaluations, "
            f"about {_duration(p.seconds)} on {where} (a rough estimate, see nasviz.search.projection); cap it with "
            f"generations, population or finetune_steps ({cap}), or stop it at any time (Ctrl-C, Stop): it resumes")


def _duration(seconds: float) -> str:
    for unit, size in (("years", 365.25 * DAY_S), ("days", DAY_S)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds / 3600:,.1f} hours"


def say_if_long(config: SearchConfig, data, device) -> str | None:
    """Print `long_search_note` for a search on `data` (None with table fitness) and `device` to stderr, if any;
    returns it."""
    import sys

    import torch

    shape = getattr(data, "shape", None)
    pixels = int(shape[-1] * shape[-2]) if shape is not None else 0
    note = long_search_note(config, pixels, torch.get_num_threads(), getattr(device, "type", "cpu") == "cuda")
    if note is not None:
        print(note, file=sys.stderr, flush=True)
    return note
