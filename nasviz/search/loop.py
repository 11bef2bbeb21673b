"""The step-wise search engine: SFT-GA (the paper's method) and its baselines (shared/DESIGN.md §1).

    search = Search(SearchConfig.from_preset("quick"), "runs/q0")
    search.warmup()      # uniform-path warm-up of the supernet, then the initial population
    search.step()        # one generation: offspring -> fine-tune -> fair re-evaluation -> selection
    search.run()         # everything that is left; returns result.json's content

Every step emits events (`nasviz.runs.events`) to subscribers and events.jsonl; a checkpoint after each warm-up chunk
and generation lets `Search.resume(run_dir)` continue exactly where a run stopped. Its parts: `evaluators` (fitness),
`phase_training`, `offspring`, `ledger` (individuals, measurements), `stopping`, `final_pick`, `checkpoint`, `views`.

Under torchrun one search runs on all the processes (`train.distributed`): each trains the same path on its slice of
every batch (gradients averaged) and evaluates its share of the candidates; only rank 0 writes the run's files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nasviz.latency import budget as latency_budget
from nasviz.runs import events, rundir
from nasviz.runs.recorder import Recorder
from nasviz.search import final_pick, ga, projection
from nasviz.search.budget import Limits, check_limits
from nasviz.search.checkpoint import SearchState, checkpoint_dict, restore
from nasviz.search.config import SearchConfig
from nasviz.search.evaluators import Evaluator, make_evaluator
from nasviz.search.ledger import Ledger
from nasviz.search.offspring import offspring
from nasviz.search.phase_training import PhaseTrainer
from nasviz.search.population import Population
from nasviz.search.resume import resuming
from nasviz.search.sampling import region_sampler
from nasviz.search.search_records import history_row
from nasviz.search.stopping import StopSwitch
from nasviz.search.views import SearchViews
from nasviz.space.genotypes import get_space
from nasviz.table import ground_truth
from nasviz.train import distributed


class Search(SearchViews, events.Publisher):
    """One search run. `config` is validated before anything is loaded or trained; with `out`, the run's files
    go there. `checkpoint` (what `resume` passes) is a saved state to continue from, in the run directory `out`.
    `ranks`: the processes it runs on (None: `nasviz.train.distributed.detect`, e.g. all that torchrun launched;
    `Ranks()`: this process alone); only rank 0 writes into `out`, and an error on one is raised on every one."""

    def __init__(self, config: SearchConfig, out: str | Path | None = None, *, progress: bool = False,
                 checkpoint: dict[str, Any] | None = None, ranks: distributed.Ranks | None = None) -> None:
        super().__init__()
        self.ranks = distributed.detect() if ranks is None else ranks
        with self.ranks.agree():  # every process stops if one fails to start (e.g. its data is missing)
            config.validate()
            self.config, self.progress = config, progress and self.ranks.main
            self.recorder = Recorder(out if self.ranks.main else None, resuming=checkpoint is not None)
            self.run_dir = self.recorder.run_dir
            self.subscribe(self.recorder.event)  # events.jsonl: every event, as subscribers see it
            self.stop = StopSwitch(self.ranks)
            self.space = get_space(config.space)
            self.truth = ground_truth(config.space, config.dataset, config.table)
            """The ground-truth table the run is judged by (None where the space and dataset have none)."""
            self.evaluator: Evaluator = make_evaluator(config, self.space, self.truth, self.ranks)
            """Where fitness comes from (`SearchConfig.fitness`); it holds the data and supernet where it has them."""
            self.config = c = self.evaluator.config  # e.g. fitted to an image folder's size
            self.limits = Limits(c.max_params, c.max_flops, c.max_latency_ms)
            self.latency = latency_budget.attach(self)  # predicted latency in every size (with latency_profile)
            self.state = SearchState(c.seed)
            """Where the search stands (all of it goes into the checkpoint, with the evaluator's part)."""
            self.ledger = Ledger(self.state, self.space, self.evaluator, self.ranks, self.truth, self.emit)
            self.trainer = PhaseTrainer(self.evaluator, c, self.state, self.recorder, self.ranks, self.emit)
            if checkpoint is not None:
                self.load_state_dict(checkpoint)
            if self.limits and self.generation < 0:  # before any training
                check_limits(self.limits, c.population, latency_budget.with_fastest(self.evaluator.smallest(),
                             self.latency), self.sizes, self.state.rng_ga, self.seen, self.space)
            self.recorder.start(self.config.to_dict(), self.generation, *(() if checkpoint is None else
                                (self.result(), checkpoint.get("events"))))
        if checkpoint is not None:
            self.emit(events.Resumed(self.generation, self.warmup_done))

    # --- the steps --------------------------------------------------------------------------------------
    def warmup(self) -> dict | None:
        """Finish the warm-up (uniform path sampling), then draw and evaluate the initial population. Returns
        generation 0's history row, or None if stopped early or already past it."""
        c, start = self.config, time.perf_counter()
        total = c.warmup_total  # warmup_steps, plus the fine-tuning steps of an equal-compute control
        if not self.evaluator.trains:
            self.state.warmup_done = total  # nothing to warm up
        if self.generation < 0 and self.warmup_done < total:
            self.emit(events.Phase("warmup", 0, steps=total, done=self.warmup_done))
            bar = tqdm(total=total, initial=self.warmup_done, desc="warm-up", disable=not self.progress)
            while self.warmup_done < total and not self.stop.stopping():
                bar.update(self.trainer.warm_up(min(c.checkpoint_every, total - self.warmup_done),
                                                self.stop.within_chunk()))
                self.state.wall_time_s, start = self.wall_time_s + time.perf_counter() - start, time.perf_counter()
                self._checkpoint()
            bar.close()
            if self.warmup_done < total:
                return None
        if self.generation >= 0:
            return None
        self.emit(events.Phase("initial", 0))
        initial = self.ledger.newcomers(ga.random_population(c.population, self.state.rng_ga, self.seen, self.space,
                                                             **self.limits.ga_rule(self.sizes)), "initial", 0)
        self.ledger.evaluate(list(initial), 0)
        self._select(initial, 0, start)
        row = self._finish_generation(initial, self.warmup_log, previous_best=None)
        self.state.warmup_log = events.TrainLog()
        return row

    def step(self) -> dict | None:
        """Run the next unit of work: the warm-up and initial population (generation 0) if not yet done,
        else one generation. Returns that generation's history row, or None when done or stopped."""
        if self.generation < 0:
            return self.warmup()
        if self.done:
            return None
        if self.generation >= self.config.generations:
            return self._final_step()
        c, g, start = self.config, self.generation + 1, time.perf_counter()
        self.emit(events.Phase("generation", g))
        previous_best = self.best
        parents = Population(p.as_parent() for p in self.population)
        children = offspring(c, self.population, self.state.rng_ga, self.seen, self.space, self.limits, self.sizes, g)
        kids = self.ledger.newcomers([child.genotype for child in children], "offspring", g, children, self.population)
        finetuned = c.uses_finetune and c.finetune_steps > 0
        if finetuned and c.record_before:
            for child, value in zip(kids, self.ledger.measure(list(kids), g, "before"), strict=True):
                child.fitness_before = value
        trained = events.TrainLog()
        if finetuned:  # fine-tune on paths of the search region R = P ∪ Q
            sampler = region_sampler(c.path_sampling, (parents + kids).genotypes, c.finetune_steps,
                                     self.state.rng_paths, self.space)
            self.trainer.train(sampler, c.finetune_steps, "finetune", g, c.finetune_lr or c.lr, trained)
        # fair re-evaluation: every fitness compared below is measured with the current weights
        stale = [p for p in parents if c.reevaluate_parents and p.evaluated_at != self.steps]
        self.ledger.evaluate(stale + list(kids), g)
        if not finetuned:
            for child in kids:
                child.fitness_before = child.fitness  # the weights did not change
        region = parents + kids
        self._select(region, g, start)
        return self._finish_generation(region, trained, previous_best)

    def run(self) -> dict:
        """Run what is left of the search (or until `request_stop`); returns the result."""
        self.stop.reset()
        if self.ranks.main:
            projection.say_if_long(self.config, getattr(self.evaluator, "data", None), self.evaluator.device)
        bar = tqdm(total=self.config.generations, initial=max(self.generation, 0), desc="generations",
                   disable=not self.progress)
        try:
            self.warmup()
            while not self.done and not self.stop.stopping() and self.generation >= 0:
                self.step()
                bar.update(1)
        finally:
            bar.close()
            self.recorder.close()
        return self.result()

    def request_stop(self) -> None:
        """Ask `run()` to stop: a warm-up after its current step (with a checkpoint), a generation when it ends."""
        self.stop.request()

    def request_checkpoint(self) -> None:
        """Ask a running warm-up for a checkpoint after its current step (Pause waits there); results don't change."""
        self.stop.request_checkpoint()

    def close(self) -> None:
        """Close the run's event log (`run()` does when it returns; a later event opens it again)."""
        self.recorder.close()

    def _select(self, region: Population, generation: int, start: float) -> None:
        """Survival: the best N of `region` (or NSGA-II's fronts) become the population of `generation`. Equal
        fitness: in an order drawn from the GA's generator (tie_break=random), or fewer parameters, then parents."""
        c = self.config
        self.state.population = region.select(c.population, pareto=c.objective == "pareto", size=c.pareto_size,
                                              rng=self.state.rng_ga if c.tie_break == "random" else None)
        self.state.generation = generation
        self.state.wall_time_s += time.perf_counter() - start

    def _finish_generation(self, region: Population, trained: events.TrainLog, previous_best) -> dict:
        row = history_row(self.state, region, trained)
        self.recorder.generation(row)
        self.emit(events.Generation.from_row(row))
        best = self.population[0]
        if previous_best is None or best.genotype.key() != previous_best[0].key():
            self.emit(events.NewBest(self.generation, str(best.genotype), best.fitness))
        self._checkpoint()
        self._finish_if_done()
        return row

    def _finish_if_done(self) -> None:
        if self.done:
            self.emit(events.Phase("done", self.generation))
            self.emit(events.Done(self.result()))
            self.recorder.close()

    def _final_step(self) -> None:
        """final_pick=retrain: retrain the next candidate, then a checkpoint; the last one ends the search."""
        c, start = self.config, time.perf_counter()
        if self.state.final is None:
            self.state.final = final_pick.candidates(self.state.latest, c.final_top_k)
            self.emit(events.Phase("final", self.generation, steps=len(self.state.final), done=0))
        candidate, number = final_pick.retrain_next(self.state.final, self.evaluator.dataset(), c, self.space)
        self.emit(events.Retrained(candidate.genotype, candidate.fitness, list(candidate.scores), number,
                                   len(self.state.final)))
        self.state.wall_time_s += time.perf_counter() - start
        self._checkpoint()
        self._finish_if_done()

    # --- checkpoints and resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything the search needs to continue exactly (checkpoint.pt's content)."""
        return checkpoint_dict(self.config.to_dict(), self.state, self.evaluator, self.recorder.run_id,
                               self.recorder.events_logged + 1, self.ranks.size)

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()`; CheckpointError where it does not fit this search."""
        restore(state, self.state, self.evaluator, self.recorder.last_checkpoint or "the checkpoint", self.space.key)
        self.recorder.run_id = state.get("run_id") or self.recorder.run_id
        self.ledger.refresh(self.population)

    def _checkpoint(self) -> None:
        if self.run_dir is not None:
            self.recorder.checkpoint(self.state_dict(), self.result())
            self.emit(events.Checkpoint(self.generation, self.warmup_done, self.recorder.run_id))
        self.stop.agree()

    @classmethod
    def load(cls, run_dir: str | Path) -> Search:
        """A search holding what `run_dir`'s checkpoint holds (supernet, population, data split), in memory only:
        nothing in the run directory is written (unlike `resume`). For inspecting a finished run's supernet."""
        state = rundir.load_search_state(run_dir)
        return cls(SearchConfig.from_dict(state["config"]), checkpoint=state, ranks=distributed.Ranks())

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: dict[str, Any] | None = None, *, force: bool = False,
               progress: bool = False) -> Search:
        """Continue the run in `run_dir` from its checkpoint; it ends exactly as the uninterrupted run. Settings
        other than `config.RESUMABLE_CHANGES` may differ from the run's only with `force`. A run of several
        processes resumes on as many (rank 0 reads the checkpoint and sends it to the others)."""
        ranks = distributed.detect()
        with resuming(run_dir, overrides, force, ranks) as (config, state):
            return cls(config, run_dir, progress=progress, checkpoint=state, ranks=ranks)
