"""The step-wise search engine: SFT-GA (the paper's method) and its baselines.

    search = Search(SearchConfig.from_preset("quick"), "runs/q0")
    search.warmup()      # uniform-path warm-up of the supernet, then the initial population
    search.step()        # one generation: offspring -> fine-tune -> fair re-evaluation -> selection
    search.run()         # everything that is left; returns result.json's content

Every step emits events (dicts with a "type") to subscribers and, with a run directory, to events.jsonl.
After warm-up chunks and after every generation a checkpoint is written atomically, so
`Search.resume(run_dir)` continues exactly where the run stopped.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import nasviz
from nasviz import ga, rundir
from nasviz.config import SearchConfig, check_device
from nasviz.data import BatchStream, crop_padding_for, eval_batches, load_dataset, split_indices
from nasviz.errors import CheckpointError, DivergedError, NasvizError
from nasviz.network import search_params
from nasviz.sampling import region_sampler, uniform_sampler
from nasviz.space import Genotype
from nasviz.supernet import Supernet
from nasviz.train import fitness, pick_device, prepare_model, train_steps

Event = dict[str, Any]
RESUMABLE_CHANGES = ("generations", "device", "data_root", "checkpoint_every")
"""Settings that may differ when resuming without `force` (extend a run, move it, checkpoint more often)."""


class Search:
    """One search run. `config` is validated before anything is loaded or trained."""

    def __init__(self, config: SearchConfig, out: str | Path | None = None, *, progress: bool = False) -> None:
        config.validate()
        self.config = config
        self.progress = progress
        # checked before loading, created after: a setting that fails at setup leaves nothing behind
        self.run_dir = _prepare_run_dir(out, create=False) if out is not None else None
        self._listeners: list[Callable[[Event], None]] = []
        self._stop_requested = False
        self._setup()
        if self.run_dir is not None:
            _prepare_run_dir(self.run_dir)
            rundir.write_json(self.run_dir / rundir.CONFIG, config.to_dict())

    # --- construction -----------------------------------------------------------------------------------
    def _setup(self) -> None:
        c = self.config
        check_device(c.device)
        self.device = pick_device(c.device)
        self.data = load_dataset(c.dataset, c.data_root)
        c.check_train_images(len(self.data.train_labels), self.data.name)  # an image folder's size is known now
        weight_idx, fitness_idx = split_indices(len(self.data.train_labels), c.weight_images, c.fitness_images, c.seed)
        channels_last = True
        self.stream = BatchStream(
            self.data.train_images[weight_idx],
            self.data.train_labels[weight_idx],
            c.batch_size,
            self.data.mean,
            self.data.std,
            seed=c.seed,
            crop_padding=crop_padding_for(self.data.shape) if c.augment else 0,
            flip=self.data.flip and c.augment,
            device=self.device,
            channels_last=channels_last,
        )
        calibration_idx = weight_idx[: c.bn_batches * c.batch_size]
        self.calibration = list(
            eval_batches(self.data.train_images[calibration_idx], self.data.train_labels[calibration_idx],
                         c.batch_size, self.data.mean, self.data.std, self.device, channels_last)
        )
        self.fitness_batches = list(
            eval_batches(self.data.train_images[fitness_idx], self.data.train_labels[fitness_idx],
                         c.eval_batch_size, self.data.mean, self.data.std, self.device, channels_last)
        )
        torch.manual_seed(c.seed)
        self.supernet = prepare_model(
            Supernet(self.data.shape[0], self.data.num_classes, c.channels, c.layers), self.device
        )
        self.optimizer = torch.optim.SGD(
            self.supernet.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        self.rng_ga = random.Random(c.seed)
        self.rng_paths = random.Random(c.seed + 1_000_003)
        # search state (all of it goes into the checkpoint)
        self.generation = -1  # -1: warm-up not finished; 0: initial population; g: after generation g
        self.warmup_done = 0
        self.steps = 0  # supernet training steps so far; also the "version" of the weights
        self.evaluations = 0
        self.wall_time_s = 0.0
        self.population: list[Genotype] = []
        self.fitness: list[float] = []
        self.params: list[int] = []
        self.fitness_at: list[int] = []  # weights version (self.steps) each fitness was computed at
        self.seen: set[str] = set()
        self.warmup_log: dict[str, list] = {"paths": [], "loss": [], "accuracy": []}
        self._params_cache: dict[str, int] = {}

    # --- events -----------------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]:
        """Call `listener(event)` for every event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, type_: str, **fields: Any) -> None:
        event = {"type": type_, **fields}
        for listener in list(self._listeners):
            listener(event)
        if self.run_dir is not None:
            self._event_log(event)

    def _event_log(self, event: Event) -> None:
        if not hasattr(self, "_events_file"):
            self._events_file = rundir.JsonlAppender(self.run_dir / rundir.EVENTS)
        self._events_file(event)

    def request_stop(self) -> None:
        """Ask `run()` to stop at the next checkpoint (after a warm-up chunk or a generation)."""
        self._stop_requested = True

    # --- state ------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.generation >= self.config.generations

    @property
    def best(self) -> tuple[Genotype, float] | None:
        return (self.population[0], self.fitness[0]) if self.population else None

    def params_of(self, genotype: Genotype) -> int:
        """Parameters of `genotype`'s search-width network (the GA's tie-breaker)."""
        key = genotype.key()
        if key not in self._params_cache:
            c = self.config
            self._params_cache[key] = search_params(
                genotype, self.data.shape[0], self.data.num_classes, c.channels, c.layers
            )
        return self._params_cache[key]

    # --- the steps --------------------------------------------------------------------------------------
    def warmup(self) -> dict | None:
        """Finish the warm-up (uniform path sampling), then draw and evaluate the initial population.

        Returns generation 0's history row, or None if stopped early or already past it."""
        c = self.config
        start = time.perf_counter()
        if self.generation < 0 and self.warmup_done < c.warmup_steps:
            self.emit("phase", phase="warmup", generation=0, steps=c.warmup_steps, done=self.warmup_done)
            bar = tqdm(total=c.warmup_steps, initial=self.warmup_done, desc="warm-up", disable=not self.progress)
            while self.warmup_done < c.warmup_steps and not self._stop_requested:
                chunk = min(c.checkpoint_every, c.warmup_steps - self.warmup_done)
                records = self._train(uniform_sampler(self.rng_paths), chunk, "warmup", 0, c.lr)
                self.warmup_done += chunk
                for key, field in (("paths", "genotype"), ("loss", "loss"), ("accuracy", "accuracy")):
                    self.warmup_log[key].extend(str(r[field]) if key == "paths" else r[field] for r in records)
                bar.update(chunk)
                self.wall_time_s += time.perf_counter() - start
                start = time.perf_counter()
                self._checkpoint()
            bar.close()
            if self.warmup_done < c.warmup_steps:
                return None
        if self.generation < 0:
            self.emit("phase", phase="initial", generation=0)
            self.population = ga.random_population(c.population, self.rng_ga, self.seen)
            self.seen.update(g.key() for g in self.population)
            self.params = [self.params_of(g) for g in self.population]
            self.fitness = [self._evaluate(g, 0, "initial", "after") for g in self.population]
            self.fitness_at = [self.steps] * len(self.population)
            order = ga.environmental_selection(self.fitness, self.params, c.population)
            individuals = [
                self._individual(g, "initial", f, None, self.params[i], True)
                for i, (g, f) in enumerate(zip(self.population, self.fitness))
            ]
            self._select(order)
            self.generation = 0
            self.wall_time_s += time.perf_counter() - start
            row = self._finish_generation(individuals, self.warmup_log, previous_best=None)
            self.warmup_log = {"paths": [], "loss": [], "accuracy": []}
            return row
        return None

    def step(self) -> dict | None:
        """Run the next unit of work: the warm-up and initial population (generation 0) if not yet done,
        else one generation. Returns that generation's history row, or None when done or stopped."""
        if self.generation < 0:
            return self.warmup()
        if self.done:
            return None
        c = self.config
        start = time.perf_counter()
        g = self.generation + 1
        self.emit("phase", phase="generation", generation=g)
        previous_best = self.best
        parents, parent_fitness, parent_at = self.population, self.fitness, self.fitness_at
        if c.method == "random":
            offspring = ga.random_population(c.population, self.rng_ga, self.seen)
        else:
            offspring = ga.make_offspring(
                parents, parent_fitness, self.rng_ga, n=c.population, p_c=c.p_crossover, p_m=c.p_mutation,
                seen=self.seen, params=self.params,
            )
        self.seen.update(o.key() for o in offspring)
        offspring_params = [self.params_of(o) for o in offspring]

        finetuned = c.uses_finetune and c.finetune_steps > 0
        offspring_before: list[float | None] = [None] * len(offspring)
        if finetuned and c.record_before:
            offspring_before = [self._evaluate(o, g, "offspring", "before") for o in offspring]
        trained: dict[str, list] = {"paths": [], "loss": [], "accuracy": []}
        if finetuned:
            region = list(parents) + list(offspring)
            sampler = region_sampler(c.path_sampling, region, c.finetune_steps, self.rng_paths)
            records = self._train(sampler, c.finetune_steps, "finetune", g, c.finetune_lr or c.lr)
            trained = {
                "paths": [str(r["genotype"]) for r in records],
                "loss": [r["loss"] for r in records],
                "accuracy": [r["accuracy"] for r in records],
            }

        # fair re-evaluation: every fitness compared below is computed under the current weights
        if c.reevaluate_parents:
            parents_after = [
                f if at == self.steps else self._evaluate(p, g, "parent", "after")
                for p, f, at in zip(parents, parent_fitness, parent_at)
            ]
            parents_at = [self.steps] * len(parents)
        else:
            parents_after, parents_at = list(parent_fitness), list(parent_at)
        offspring_after = [self._evaluate(o, g, "offspring", "after") for o in offspring]
        if not finetuned:
            offspring_before = list(offspring_after)  # the weights did not change

        candidates = list(parents) + list(offspring)
        all_fitness = parents_after + offspring_after
        all_params = self.params + offspring_params
        all_before = list(parent_fitness) + offspring_before
        all_at = parents_at + [self.steps] * len(offspring)
        order = ga.environmental_selection(all_fitness, all_params, c.population)
        chosen = set(order)
        individuals = [
            self._individual(cand, "parent" if i < len(parents) else "offspring", all_fitness[i], all_before[i],
                             all_params[i], i in chosen, all_at[i])
            for i, cand in enumerate(candidates)
        ]
        self.population, self.fitness, self.params, self.fitness_at = candidates, all_fitness, all_params, all_at
        self._select(order)
        self.generation = g
        self.wall_time_s += time.perf_counter() - start
        return self._finish_generation(individuals, trained, previous_best)

    def run(self) -> dict:
        """Run what is left of the search (or until `request_stop`); returns the result."""
        self._stop_requested = False
        bar = tqdm(total=self.config.generations, initial=max(self.generation, 0), desc="generations",
                   disable=not self.progress)
        self.warmup()
        while not self.done and not self._stop_requested and self.generation >= 0:
            self.step()
            bar.update(1)
        bar.close()
        return self.result()

    # --- helpers ----------------------------------------------------------------------------------------
    def _train(self, sampler, steps: int, phase: str, generation: int, lr: float) -> list[dict]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = self.config.warmup_steps if phase == "warmup" else steps
        offset = self.warmup_done if phase == "warmup" else 0

        def on_step(record: dict) -> None:
            self.emit("train_step", phase=phase, generation=generation, step=record["step"] - self.steps + offset,
                      of=total, loss=record["loss"], accuracy=record["accuracy"], genotype=str(record["genotype"]))

        path = self.run_dir / rundir.CHECKPOINT if self.run_dir is not None else None
        checkpoint = f": {path}" if path is not None and path.exists() else ""
        try:
            records = train_steps(
                self.supernet, self.stream.next, self.optimizer, sampler, steps, phase=phase, first_step=self.steps,
                grad_clip=self.config.grad_clip, on_step=on_step,
            )
        except DivergedError as exc:  # nothing is written: the last checkpoint is the last good state
            raise DivergedError(f"{exc}{checkpoint}") from None
        maxima = torch.stack([p.detach().abs().max().float() for p in self.supernet.parameters()])
        if not torch.isfinite(maxima).all():  # a finite loss whose update broke the weights: never checkpoint them
            raise DivergedError(
                f"{phase} diverged: the supernet weights became NaN or infinite at step {self.steps + steps - 1} "
                f"with learning rate {lr:g}; lower the learning rate and resume from the last checkpoint{checkpoint}"
            )
        self.steps += steps
        return records

    def _evaluate(self, genotype: Genotype, generation: int, role: str, stage: str) -> float:
        value = fitness(self.supernet, genotype, self.calibration, self.fitness_batches)
        self.evaluations += 1
        self.emit("evaluation", generation=generation, genotype=str(genotype), fitness=value,
                  params=self.params_of(genotype), role=role, stage=stage, supernet_steps=self.steps)
        return value

    def _individual(self, genotype, role, fit, before, params, selected, at=None) -> dict:
        return {"genotype": str(genotype), "role": role, "fitness": fit, "fitness_before": before,
                "params": params, "selected": selected, "evaluated_at_step": self.steps if at is None else at}

    def _select(self, order: list[int]) -> None:
        self.population = [self.population[i] for i in order]
        self.fitness = [self.fitness[i] for i in order]
        self.params = [self.params[i] for i in order]
        self.fitness_at = [self.fitness_at[i] for i in order]

    def _finish_generation(self, individuals: list[dict], trained: dict, previous_best) -> dict:
        best_genotype, best_fitness = self.best
        row = {
            "generation": self.generation,
            "supernet_steps": self.steps,
            "evaluations": self.evaluations,
            "wall_time_s": round(self.wall_time_s, 3),
            "individuals": individuals,
            "population": [str(g) for g in self.population],
            "fitness": list(self.fitness),
            "params": list(self.params),
            "best": {"genotype": str(best_genotype), "fitness": best_fitness},
            "mean_fitness": sum(self.fitness) / len(self.fitness),
            "trained_paths": trained["paths"],
            "train_loss": trained["loss"],
            "train_accuracy": trained["accuracy"],
        }
        if self.run_dir is not None:
            rundir.append_jsonl(self.run_dir / rundir.HISTORY, row)
        self.emit("generation", **{k: v for k, v in row.items() if k not in ("trained_paths",)})
        if previous_best is None or best_genotype.key() != previous_best[0].key():
            self.emit("new_best", generation=self.generation, genotype=str(best_genotype), fitness=best_fitness)
        self._checkpoint()
        if self.done:
            self.emit("phase", phase="done", generation=self.generation)
            self.emit("done", **self.result())
        return row

    def result(self) -> dict:
        """result.json's content: best genotype and fitness, top-k, method, switches, budgets, versions."""
        c = self.config
        top = [
            {"genotype": str(g), "fitness": f, "params": p}
            for g, f, p in list(zip(self.population, self.fitness, self.params))[: c.top_k]
        ]
        return {
            "finished": self.done,
            "best_genotype": top[0]["genotype"] if top else None,
            "best_fitness": top[0]["fitness"] if top else None,
            "best_params": top[0]["params"] if top else None,
            "top_k": top,
            "method": c.method,
            "switches": {"finetune": c.uses_finetune, "path_sampling": c.path_sampling,
                         "reevaluate_parents": c.reevaluate_parents},
            "dataset": c.dataset,
            "preset": c.preset,
            "seed": c.seed,
            "generation": self.generation,
            "generations": c.generations,
            "population": c.population,
            "search_wall_time_s": round(self.wall_time_s, 3),
            "supernet_steps": {"warmup": self.warmup_done,
                               "finetune": self.steps - self.warmup_done, "total": self.steps},
            "evaluations": self.evaluations,
            "genotypes_evaluated": len(self.seen),
            "device": str(self.device),
            "versions": {"nasviz": nasviz.__version__, "torch": torch.__version__,
                         "python": platform.python_version()},
        }

    # --- checkpoints and resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "format": "nasviz-checkpoint",
            "version": 1,
            "config": self.config.to_dict(),
            "generation": self.generation,
            "warmup_done": self.warmup_done,
            "steps": self.steps,
            "evaluations": self.evaluations,
            "wall_time_s": self.wall_time_s,
            "population": [str(g) for g in self.population],
            "fitness": list(self.fitness),
            "params": list(self.params),
            "fitness_at": list(self.fitness_at),
            "seen": sorted(self.seen),
            "warmup_log": self.warmup_log,
            "supernet": self.supernet.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "stream": self.stream.state_dict(),
            "rng": {"ga": self.rng_ga.getstate(), "paths": self.rng_paths.getstate(),
                    "torch": torch.get_rng_state()},
        }

    def load_state_dict(self, state: dict) -> None:
        self.generation, self.warmup_done, self.steps = state["generation"], state["warmup_done"], state["steps"]
        self.evaluations, self.wall_time_s = state["evaluations"], state["wall_time_s"]
        self.population = [Genotype.parse(t) for t in state["population"]]
        self.fitness, self.params = list(state["fitness"]), list(state["params"])
        self.fitness_at, self.seen = list(state["fitness_at"]), set(state["seen"])
        self.warmup_log = {k: list(v) for k, v in state["warmup_log"].items()}
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        self.rng_ga.setstate(_as_random_state(state["rng"]["ga"]))
        self.rng_paths.setstate(_as_random_state(state["rng"]["paths"]))
        torch.set_rng_state(state["rng"]["torch"])

    def _checkpoint(self) -> None:
        if self.run_dir is None:
            return
        rundir.save_checkpoint(self.run_dir / rundir.CHECKPOINT, self.state_dict())
        rundir.write_json(self.run_dir / rundir.RESULT, self.result())
        self.emit("checkpoint", generation=self.generation, warmup_done=self.warmup_done)

    @classmethod
    def resume(
        cls, run_dir: str | Path, overrides: dict[str, Any] | None = None, *, force: bool = False,
        progress: bool = False,
    ) -> Search:
        """Continue the run in `run_dir` from its checkpoint; it ends exactly as the uninterrupted run."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            what = "is not a directory" if run_dir.exists() else "does not exist"
            raise CheckpointError(f"run directory {run_dir} {what}")
        path = run_dir / rundir.CHECKPOINT
        state = rundir.load_checkpoint(path)
        if not isinstance(state.get("config"), dict):
            raise CheckpointError(f"{path} holds no search config; it is not a nasviz search checkpoint")
        config = SearchConfig.from_dict({**state["config"], **(overrides or {})})
        changed = {k for k, v in config.to_dict().items() if v != state["config"].get(k)}
        refused = sorted(changed - set(RESUMABLE_CHANGES))
        if refused and not force:
            k = refused[0]
            raise CheckpointError(
                f"resuming {run_dir} with {k}={getattr(config, k)!r}, but the run used {k}={state['config'][k]!r}; "
                f"only {', '.join(RESUMABLE_CHANGES)} may change (override explicitly to accept)"
            )
        search = cls.__new__(cls)
        search.config, search.progress, search.run_dir = config, progress, run_dir
        search._listeners, search._stop_requested = [], False
        search._setup()
        try:
            search.load_state_dict(state)
        except NasvizError as exc:
            raise CheckpointError(f"{path} cannot be resumed: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # missing fields, wrong shapes
            text = " ".join(str(exc).split())[:200]
            raise CheckpointError(f"{path} does not match this search ({type(exc).__name__}: {text})") from None
        rundir.remove_temporaries(run_dir)
        rows = [
            r for r in rundir.read_jsonl(run_dir / rundir.HISTORY)
            if isinstance(r, dict) and isinstance(r.get("generation"), int) and r["generation"] <= search.generation
        ]
        rundir.write_jsonl(run_dir / rundir.HISTORY, rows)
        rundir.write_json(run_dir / rundir.CONFIG, config.to_dict())
        search.emit("resumed", generation=search.generation, warmup_done=search.warmup_done)
        return search


def _as_random_state(state) -> tuple:
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _prepare_run_dir(out: str | Path, create: bool = True) -> Path:
    """Create the run directory; refuse one that already holds a run (never overwrite finished work)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"--out {path} exists and is not a directory")
    for name in (rundir.CHECKPOINT, rundir.HISTORY):
        if (path / name).exists() or (path / name).is_symlink():
            raise CheckpointError(
                f"{path} already holds a search run; resume it (--resume {path}) or choose another --out"
            )
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise CheckpointError(f"--out {path}: {parent} is not a directory")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(f"cannot create the run directory {path}: {exc.strerror or exc}") from None
    return path


def load_history(run_dir: str | Path) -> list[dict]:
    """The history rows (one per generation) of a run directory, running or finished."""
    return rundir.read_jsonl(Path(run_dir) / rundir.HISTORY)
