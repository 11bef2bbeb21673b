"""The search's supernet training, phase by phase (the warm-up in chunks between checkpoints; each generation's
fine-tuning): every step is emitted as a `TrainStep` event and logged for the history row, the learning rates
follow `SearchConfig.lr_schedule` within the phase, and a diverged loss ends the search with advice that names the
last checkpoint (nothing is written: that checkpoint is the last good state)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nasviz.errors import DivergedError
from nasviz.runs import events
from nasviz.search.sampling import uniform_sampler
from nasviz.train import schedule
from nasviz.train.steps import PathSampler

if TYPE_CHECKING:
    from nasviz.runs.recorder import Recorder
    from nasviz.search.checkpoint import SearchState
    from nasviz.search.config import SearchConfig
    from nasviz.search.evaluators import Evaluator
    from nasviz.train.distributed import Ranks


class PhaseTrainer:
    """Trains `evaluator`'s supernet for the search whose `state` (its step count) it advances."""

    def __init__(self, evaluator: Evaluator, config: SearchConfig, state: SearchState, recorder: Recorder,
                 ranks: Ranks, emit: Callable[[events.Event], None]) -> None:
        self.evaluator, self.config, self.state, self.recorder, self.ranks, self.emit = \
            evaluator, config, state, recorder, ranks, emit

    def warm_up(self, steps: int, stop: Callable[[], bool] | None) -> int:
        """`steps` more warm-up steps, each on one path sampled uniformly (SPOS); returns how many ran (fewer where
        `stop()` turned True after one)."""
        uniform = uniform_sampler(self.state.rng_paths, self.evaluator.space)
        done = self.train(uniform, steps, "warmup", 0, self.config.lr, self.state.warmup_log, stop)
        self.state.warmup_done += done
        return done

    def train(self, sampler: PathSampler, steps: int, phase: str, generation: int, lr: float, log: events.TrainLog,
              stop: Callable[[], bool] | None = None) -> int:
        """`steps` supernet steps on paths from `sampler`, each emitted as a `TrainStep` event and logged in `log`
        (fewer where `stop()` turns True after one: a stop in the warm-up); returns how many ran."""
        first = self.state.steps
        total, offset = (self.config.warmup_total, self.state.warmup_done) if phase == "warmup" else (steps, 0)

        def on_step(record: dict) -> None:
            event = events.TrainStep(phase, generation, record["step"] - first + offset, total, record["loss"],
                                     record["accuracy"], str(record["genotype"]))
            self.emit(event)
            log.add(event)

        last = self.recorder.last_checkpoint
        try:
            done = self.evaluator.train(sampler, steps, phase=phase, first_step=first, lr=lr, on_step=on_step,
                                        rates=schedule.phase_rates(self.config.lr_schedule, lr, offset, steps, total),
                                        stop=stop)
        except DivergedError as exc:
            advice = (f", and resume from the last checkpoint, {last}, overriding that setting" if last else
                      "; no checkpoint was written yet, so start the search again")
            error = DivergedError(f"{exc}{advice}")
            error.agreed = self.ranks.size > 1  # type: ignore[attr-defined]  # every process saw the same loss
            raise error from None
        self.state.steps += done
        return done
