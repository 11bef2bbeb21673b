"""The step-wise search engine: SFT-GA (the paper's method) and its baselines.

    search = Search(SearchConfig.from_preset("quick"), "runs/q0")
    search.warmup()      # uniform-path warm-up of the supernet, then the initial population
    search.step()        # one generation: offspring -> fine-tune -> fair re-evaluation -> selection
    search.run()         # everything that is left; returns result.json's content

Every step emits events (`nasviz.runs.events`) to subscribers and, with a run directory, to events.jsonl. After
warm-up chunks and after every generation a checkpoint is written atomically (`nasviz.runs.recorder`), so
`Search.resume(run_dir)` continues exactly where the run stopped.

Under torchrun (or with `torch.distributed` initialised) one search runs on all the processes (`train.distributed`):
every process trains the same path on its slice of each global batch, with the gradients averaged; each
evaluates its share of the candidates and all receive every fitness; only rank 0 writes the run's files.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nasviz.errors import CheckpointError, ConfigError, DivergedError, NasvizError, one_line
from nasviz.latency import budget as latency_budget
from nasviz.runs import events, rundir
from nasviz.runs.recorder import Recorder
from nasviz.search import final_pick, ga, lineage, projection
from nasviz.search.budget import Limits, check_limits
from nasviz.search.checkpoint import SearchState, check_resumable, check_state
from nasviz.search.config import SearchConfig
from nasviz.search.evaluators import Evaluator, make_evaluator
from nasviz.search.population import Individual, Population
from nasviz.search.sampling import region_sampler, uniform_sampler
from nasviz.search.search_records import history_row, search_result
from nasviz.space.genotypes import Genotype, get_space
from nasviz.table import ground_truth
from nasviz.train import distributed, schedule
from nasviz.train.steps import PathSampler


class Search(events.Publisher):
    """One search run. `config` is validated before anything is loaded or trained; with `out`, the run's files
    go there. `checkpoint` (what `resume` passes) is a saved state to continue from, in the run directory `out`.
    `ranks`: the processes this search runs on (None: `nasviz.train.distributed.detect`, i.e. all of torch.distributed's
    default group where there is one or torchrun launched several; `Ranks()`: this process alone). With several,
    only rank 0 writes into `out`, and an error on one process is raised on every one."""

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
            self.stop_requested = False
            """Whether `run()` stops at the next checkpoint (see `request_stop`; with several processes, a stop
            asked on any of them stops all)."""
            self._stop_agreed = False  # with several processes: whether any asked to stop, as of the last checkpoint
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
            if checkpoint is not None:
                self.load_state_dict(checkpoint)
            if self.limits and self.generation < 0:  # before any training
                check_limits(self.limits, c.population, latency_budget.with_fastest(self.evaluator.smallest(),
                             self.latency), self.sizes, self.state.rng_ga, self.seen, self.space)
            self.recorder.start(self.config.to_dict(), self.generation, *(() if checkpoint is None else
                                (self.result(), checkpoint.get("events"))))
        if checkpoint is not None:
            self.emit(events.Resumed(self.generation, self.warmup_done))

    _STATE = frozenset(("generation", "warmup_done", "steps", "evaluations", "diagnostic_evaluations", "wall_time_s",
                        "population", "seen", "warmup_log", "rng_ga", "rng_paths"))
    _EVALUATOR = frozenset(("sizes", "device", "precision", "supernet", "optimizer", "data", "stream", "calibration",
                            "fitness_batches"))

    def __getattr__(self, name: str) -> Any:
        """Read-only views: `search.generation` etc. are the `state`'s; `search.supernet`, `search.data`, `search.sizes`
        etc. the evaluator's (None where it has no such part, e.g. no supernet with fitness=table)."""
        if name in Search._STATE:
            return getattr(self.__dict__["state"], name)
        if name in Search._EVALUATOR:
            return getattr(self.__dict__["evaluator"], name, None)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # --- state ------------------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask `run()` to stop: a warm-up after its current training step (then it writes a checkpoint), a
        generation when it ends (its fine-tuning, re-evaluation and selection complete)."""
        self.stop_requested = True

    @property
    def done(self) -> bool:
        """Every generation run, and the final pick made where it retrains."""
        return self.generation >= self.config.generations and not self._pick_pending

    @property
    def _pick_pending(self) -> bool:
        final, c = self.state.final, self.config
        return c.final_pick == "retrain" and (final is None or any(len(x.scores) < c.final_seeds for x in final))

    @property
    def best(self) -> tuple[Genotype, float] | None:
        return (self.population[0].genotype, self.population[0].fitness) if len(self.population) else None

    def params_of(self, genotype: Genotype) -> int:
        """Parameters of `genotype`'s search-width network (the GA's tie-breaker; with fitness=table, the table's)."""
        return self.sizes(genotype).params

    def flops_of(self, genotype: Genotype) -> int:
        """FLOPs per image of `genotype`'s search-width network (torch's counter; with fitness=table, the table's)."""
        return self.sizes(genotype).flops

    # --- the steps --------------------------------------------------------------------------------------
    def warmup(self) -> dict | None:
        """Finish the warm-up (uniform path sampling), then draw and evaluate the initial population.

        Returns generation 0's history row, or None if stopped early or already past it."""
        c, start = self.config, time.perf_counter()
        total = c.warmup_total  # warmup_steps, plus the fine-tuning steps of an equal-compute control
        if not self.evaluator.trains:
            self.state.warmup_done = total  # nothing to warm up
        if self.generation < 0 and self.warmup_done < total:
            self.emit(events.Phase("warmup", 0, steps=total, done=self.warmup_done))
            bar = tqdm(total=total, initial=self.warmup_done, desc="warm-up", disable=not self.progress)
            while self.warmup_done < total and not self._stopping():
                chunk = min(c.checkpoint_every, total - self.warmup_done)
                uniform = uniform_sampler(self.state.rng_paths, self.space)
                chunk = self._train(uniform, chunk, "warmup", 0, c.lr, self.warmup_log,
                                    stop=self._stopping if self.ranks.size == 1 else None)
                self.state.warmup_done += chunk  # fewer steps than asked where a stop cut the chunk short
                bar.update(chunk)
                self.state.wall_time_s, start = self.wall_time_s + time.perf_counter() - start, time.perf_counter()
                self._checkpoint()
            bar.close()
            if self.warmup_done < total:
                return None
        if self.generation >= 0:
            return None
        self.emit(events.Phase("initial", 0))
        initial = self._newcomers(ga.random_population(c.population, self.state.rng_ga, self.seen, self.space,
                                                       **self.limits.ga_rule(self.sizes)), "initial")
        lineage.name_newcomers(initial, 0, self.space)
        self._evaluate_all(list(initial), 0)
        self.state.population = initial.select(c.population, pareto=c.objective == "pareto", rng=self._tie_rng,
                                               size=c.pareto_size)
        self.state.generation = 0
        self.state.wall_time_s += time.perf_counter() - start
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
        children = self._breed()
        offspring = self._newcomers([child.genotype for child in children], "offspring")
        lineage.name_newcomers(offspring, g, self.space, children, self.population)
        finetuned = c.uses_finetune and c.finetune_steps > 0
        if finetuned and c.record_before:
            for child, value in zip(offspring, self._measure_all(list(offspring), g, "before"), strict=True):
                child.fitness_before = value
        trained = events.TrainLog()
        if finetuned:  # fine-tune on paths of the search region R = P ∪ Q
            sampler = region_sampler(c.path_sampling, (parents + offspring).genotypes, c.finetune_steps,
                                     self.state.rng_paths, self.space)
            self._train(sampler, c.finetune_steps, "finetune", g, c.finetune_lr or c.lr, trained)
        # fair re-evaluation: every fitness compared below is measured with the current weights
        stale = [p for p in parents if c.reevaluate_parents and p.evaluated_at != self.steps]
        self._evaluate_all(stale + list(offspring), g)
        if not finetuned:
            for child in offspring:
                child.fitness_before = child.fitness  # the weights did not change
        region = parents + offspring
        self.state.population = region.select(c.population, pareto=c.objective == "pareto", rng=self._tie_rng,
                                              size=c.pareto_size)
        self.state.generation = g
        self.state.wall_time_s += time.perf_counter() - start
        return self._finish_generation(region, trained, previous_best)

    def run(self) -> dict:
        """Run what is left of the search (or until `request_stop`); returns the result."""
        self.stop_requested = self._stop_agreed = False
        if self.ranks.main:
            projection.say_if_long(self.config, getattr(self.evaluator, "data", None), self.evaluator.device)
        bar = tqdm(total=self.config.generations, initial=max(self.generation, 0), desc="generations",
                   disable=not self.progress)
        try:
            self.warmup()
            while not self.done and not self._stopping() and self.generation >= 0:
                self.step()
                bar.update(1)
        finally:
            bar.close()
            self.recorder.close()
        return self.result()

    def close(self) -> None:
        """Close the run's event log (`run()` does when it returns; a later event opens it again)."""
        self.recorder.close()

    # --- helpers ----------------------------------------------------------------------------------------
    def _breed(self) -> list[ga.Child]:
        """Q: N genotypes never evaluated before: children of the population (binary tournaments, crossover,
        mutation), or random ones for random search; each with how it was made."""
        c, p, rule = self.config, self.population, self.limits.ga_rule(self.sizes)
        try:
            if c.method == "random":
                return [ga.Child(g, ga.Provenance("random"))
                        for g in ga.random_population(c.population, self.state.rng_ga, self.seen, self.space, **rule)]
            return ga.breed(p.genotypes, p.fitness, self.state.rng_ga, n=c.population, p_c=c.p_crossover,
                                     p_m=c.p_mutation, seen=self.seen, space=self.space, **rule,
                                     params=p.params if c.tie_break == "params" else None)
        except RuntimeError as exc:
            if not self.limits:
                raise
            raise ConfigError(f"{self.limits} leaves too few unseen networks for generation {self.generation + 1} "
                              f"({exc}); allowed: larger limits or none") from None

    @property
    def _tie_rng(self) -> random.Random | None:
        """What orders equal fitness values in survival: the GA's generator (tie_break=random), or None (fewer
        parameters, then parents first). In the tournaments a tie goes to the first drawn: random, unless the
        parameter counts are passed (tie_break=params)."""
        return self.state.rng_ga if self.config.tie_break == "random" else None

    def _newcomers(self, genotypes: list[Genotype], role: str) -> Population:
        self.seen.update(self.space.key(g) for g in genotypes)
        truth = self.truth.summary if self.truth is not None else lambda g: None
        return Population(Individual(g, self.params_of(g), role, truth=truth(g), flops=self.flops_of(g),
                                     latency_ms=self.sizes(g).latency_ms) for g in genotypes)

    def _train(self, sampler: PathSampler, steps: int, phase: str, generation: int, lr: float,
               log: events.TrainLog, stop=None) -> int:
        """`steps` supernet steps on paths from `sampler`, each emitted as a `TrainStep` event and logged in `log`
        (fewer where `stop()` turns True after one: a Stop in the warm-up); returns how many ran."""
        total, offset = (self.config.warmup_total, self.warmup_done) if phase == "warmup" else (steps, 0)

        def on_step(record: dict) -> None:
            event = events.TrainStep(phase, generation, record["step"] - self.steps + offset, total, record["loss"],
                                     record["accuracy"], str(record["genotype"]))
            self.emit(event)
            log.add(event)

        last = self.recorder.last_checkpoint
        try:
            done = self.evaluator.train(sampler, steps, phase=phase, first_step=self.steps, lr=lr, on_step=on_step,
                                        rates=schedule.phase_rates(self.config.lr_schedule, lr, offset, steps, total),
                                        stop=stop)
        except DivergedError as exc:  # nothing is written: the last checkpoint is the last good state
            advice = (f", and resume from the last checkpoint, {last}, overriding that setting" if last else
                      "; no checkpoint was written yet, so start the search again")
            error = DivergedError(f"{exc}{advice}")
            error.agreed = self.ranks.size > 1  # type: ignore[attr-defined]  # every process saw the same loss
            raise error from None
        self.state.steps += done
        return done

    def _record(self, individual: Individual, value: float, generation: int, stage: str) -> float:
        if stage == "before":  # a diagnostic: the search never selects by it
            self.state.diagnostic_evaluations += 1
        else:
            self.state.evaluations += 1
        lineage.record_fitness(individual, generation, self.steps, value, stage)
        self.emit(events.Evaluation(generation, str(individual.genotype), value, individual.params, individual.role,
                                    stage, self.steps))
        return value

    def _measure_all(self, individuals: list[Individual], generation: int, stage: str) -> list[float]:
        """The fitness of each of `individuals` with the current weights, in order. With several processes each
        measures its share and every process receives every value (an evaluator that is not `shardable`, e.g. a
        table lookup, scores all on every process: it is cheap, and its noise is drawn in order)."""
        score = self.evaluator.score
        if self.ranks.size == 1 or not self.evaluator.shardable:
            return [self._record(i, score(i.genotype), generation, stage) for i in individuals]
        values = self.ranks.gather([score(i.genotype) for i in self.ranks.shard(individuals)], len(individuals))
        return [self._record(i, v, generation, stage) for i, v in zip(individuals, values, strict=True)]

    def _evaluate_all(self, individuals: list[Individual], generation: int) -> None:
        """Measure the fitness of `individuals` with the current weights."""
        for individual, value in zip(individuals, self._measure_all(individuals, generation, "after"), strict=True):
            individual.fitness = value
            individual.evaluated_at = self.steps
            self.state.latest[self.space.key(individual.genotype)] = (str(individual.genotype), value)

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
        """final_pick=retrain: retrain the next candidate (`nasviz.search.final_pick`), then a checkpoint; the last one
        ends the search."""
        c, start = self.config, time.perf_counter()
        if self.state.final is None:
            self.state.final = final_pick.candidates(self.state.latest, c.final_top_k)
            self.emit(events.Phase("final", self.generation, steps=len(self.state.final), done=0))
        todo = [x for x in self.state.final if len(x.scores) < c.final_seeds]
        candidate = final_pick.retrain(todo[0], self.evaluator.dataset(), c, self.space)
        self.emit(events.Retrained(candidate.genotype, candidate.fitness, list(candidate.scores),
                                   len(self.state.final) - len(todo) + 1, len(self.state.final)))
        self.state.wall_time_s += time.perf_counter() - start
        self._checkpoint()
        self._finish_if_done()

    def result(self) -> dict:
        """result.json's content: best genotype and fitness, top-k, method, switches, budgets, versions."""
        return {**search_result(self.config, self.state, run_id=self.recorder.run_id, device=self.device,
                                precision=self.precision, processes=self.ranks.size, truth=self.truth,
                                truth_used=self.evaluator.uses_truth, sizes=self.sizes, space=self.space),
                **latency_budget.result_fields(self)}

    # --- checkpoints and resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything the search needs to continue exactly (checkpoint.pt's content)."""
        state, own = self.state.state_dict(), self.evaluator.state_dict()
        rng = {**state.pop("rng"), **self.evaluator.random_states()}
        return {"format": "nasviz-checkpoint", "version": 1, "config": self.config.to_dict(), **state,
                "run_id": self.recorder.run_id,
                "events": self.recorder.events_logged + 1,  # events.jsonl's lines, the Checkpoint event that follows
                **own, "rng": rng, **({"processes": self.ranks.size} if self.ranks.size > 1 else {})}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict()`; CheckpointError where it does not fit this search."""
        source = self.recorder.last_checkpoint or "the checkpoint"
        check_state(state, source)
        self.recorder.run_id = state.get("run_id") or self.recorder.run_id
        try:
            self.state.load_state_dict(state, self.space.key)
            self.evaluator.load_state_dict(state)
        except NasvizError as exc:
            raise CheckpointError(f"{source} cannot be resumed: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # missing fields, wrong shapes
            raise CheckpointError(f"{source} does not match this search ({type(exc).__name__}: {one_line(exc)})") \
                from None
        for individual in self.population:
            individual.truth = self.truth.summary(individual.genotype) if self.truth is not None else None
            individual.flops = self.flops_of(individual.genotype)
            individual.latency_ms = self.sizes(individual.genotype).latency_ms

    def _checkpoint(self) -> None:
        if self.run_dir is not None:
            self.recorder.checkpoint(self.state_dict(), self.result())
            self.emit(events.Checkpoint(self.generation, self.warmup_done, self.recorder.run_id))
        if self.ranks.size > 1:  # every process stops here, or none
            self._stop_agreed = self.ranks.any(self.stop_requested)

    def _stopping(self) -> bool:
        """Whether `run()` stops now: a stop was asked (with several processes: on any of them, as they agreed at
        the last checkpoint; a request since then counts at the next, so that all stop at the same point)."""
        return self.stop_requested if self.ranks.size == 1 else self._stop_agreed

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
        held = None
        try:
            with ranks.agree():
                if ranks.main:
                    held = rundir.lock(rundir.check_resumable(run_dir))  # one writer: refused while another writes
                    state = rundir.load_search_state(run_dir)
                    check_resumable(state, Path(run_dir), ranks.size, force)
                    config = SearchConfig.resumed(state["config"], overrides, force)
                    if config.generations < state["generation"]:
                        raise ConfigError(f"generations={config.generations} is fewer than the {state['generation']} "
                                          f"this run has done; allowed: generations >= {state['generation']}")
            if ranks.size > 1:  # the others receive what rank 0 read and accepted
                sent = ranks.broadcast_state({"state": state, "config": config.to_dict()} if ranks.main else None)
                state, config = sent["state"], SearchConfig.from_dict(sent["config"])
            return cls(config, run_dir, progress=progress, checkpoint=state, ranks=ranks)
        except BaseException:
            if held is not None:
                held.release_if_unowned()
            raise

