"""What a search writes into its run directory (config.json, events.jsonl, history.jsonl, checkpoint.pt and
result.json; without a run directory, nothing) and the formats of a history row, the result and a checkpoint."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nasviz import ga, rundir
from nasviz.errors import CheckpointError, NasvizError, one_line
from nasviz.events import Event, TrainLog
from nasviz.population import Individual, Population
from nasviz.version import __version__

if TYPE_CHECKING:
    from nasviz.search import Search


class Recorder:
    """The writer of one run directory (`run_dir` None: a search that writes nothing).

    A new run's folder is checked when the recorder is made and created by `start`, so a search that fails
    while it sets up leaves nothing behind; a resumed run's folder must exist."""

    def __init__(self, run_dir: str | Path | None, *, resuming: bool = False) -> None:
        self.resuming = resuming
        self.run_dir: Path | None = None
        if run_dir is not None:
            self.run_dir = rundir.check_existing(run_dir) if resuming else rundir.check_new(run_dir)
        self._events: rundir.JsonlAppender | None = None

    def start(self, config: dict[str, Any], generation: int) -> None:
        """Create the run directory and write config.json; when resuming, first drop what the last checkpoint
        does not cover (temporary files, history rows after `generation`)."""
        if self.run_dir is None:
            return
        if self.resuming:
            rundir.remove_temporaries(self.run_dir)
            rundir.keep_history(self.run_dir, generation)
        else:
            rundir.create(self.run_dir)
        rundir.write_json(self.run_dir / rundir.CONFIG, config)

    def event(self, event: Event) -> None:
        """Append the event to events.jsonl (opened at the first event, until `close`)."""
        if self.run_dir is None:
            return
        if self._events is None:
            self._events = rundir.JsonlAppender(self.run_dir / rundir.EVENTS)
        self._events(event.to_json())

    def generation(self, row: dict[str, Any]) -> None:
        """Append a generation's row to history.jsonl."""
        if self.run_dir is not None:
            rundir.append_jsonl(self.run_dir / rundir.HISTORY, row)

    def checkpoint(self, state: dict[str, Any], result: dict[str, Any]) -> None:
        """Write checkpoint.pt, then result.json (each atomically)."""
        if self.run_dir is not None:
            rundir.save_checkpoint(self.run_dir / rundir.CHECKPOINT, state)
            rundir.write_json(self.run_dir / rundir.RESULT, result)

    @property
    def last_checkpoint(self) -> Path | None:
        """The checkpoint a failed search can be resumed from, if there is one."""
        path = self.run_dir / rundir.CHECKPOINT if self.run_dir is not None else None
        return path if path is not None and path.exists() else None

    def close(self) -> None:
        """Close events.jsonl (a later event opens it again)."""
        if self._events is not None:
            self._events.close()
            self._events = None


def history_row(search: Search, region: Population, trained: TrainLog) -> dict[str, Any]:
    """A generation's history.jsonl row: every individual of the region, the surviving population (best
    first), the best, the mean fitness and the paths trained."""
    population = search.population
    return {
        "generation": search.generation,
        "supernet_steps": search.steps,
        "evaluations": search.evaluations,
        "wall_time_s": round(search.wall_time_s, 3),
        "individuals": [i.to_json() for i in region],
        "population": [str(g) for g in population.genotypes],
        "fitness": population.fitness,
        "params": population.params,
        "best": {"genotype": str(population[0].genotype), "fitness": population[0].fitness,
                 **({"truth": population[0].truth} if population[0].truth is not None else {})},
        "mean_fitness": sum(population.fitness) / len(population),
        "trained_paths": trained.paths,
        "train_loss": trained.loss,
        "train_accuracy": trained.accuracy,
    }


def search_result(search: Search) -> dict[str, Any]:
    """result.json's content: best genotype and fitness, top-k, method, switches, budgets, versions; with
    objective=pareto, the final population's non-dominated front."""
    c = search.config
    top = [_summary(i) for i in list(search.population)[: c.top_k]]
    return {
        "finished": search.done,
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
        "generation": search.generation,
        "generations": c.generations,
        "population": c.population,
        "search_wall_time_s": round(search.wall_time_s, 3),
        "supernet_steps": {"warmup": search.warmup_done, "finetune": search.steps - search.warmup_done,
                           "total": search.steps},
        "evaluations": search.evaluations,
        "genotypes_evaluated": len(search.seen),
        "device": str(search.device),
        "versions": {"nasviz": __version__, "torch": torch.__version__, "python": platform.python_version()},
        **({"truth": _truth_summary(search)} if search.truth is not None and len(search.population) else {}),
        **({"objective": c.objective, "front": pareto_front(search.population)} if c.objective == "pareto" else {}),
    }


def _summary(individual: Individual) -> dict[str, Any]:
    """An individual as result.json lists it: genotype, fitness, params and (where counted) FLOPs."""
    flops = {} if individual.flops is None else {"flops": individual.flops}
    return {"genotype": str(individual.genotype), "fitness": individual.fitness, "params": individual.params,
            **flops}


def pareto_front(population: Population) -> list[dict[str, Any]]:
    """The members of `population` no other member dominates on (fitness up, params down), fewest params first."""
    front = ga.non_dominated_sort(ga.size_objectives(population.fitness, population.params))
    members = [population[i] for i in (front[0] if front else [])]
    return [_summary(i) for i in sorted(members, key=lambda i: (i.params, -i.fitness))]


def _truth_summary(search: Search) -> dict[str, Any]:
    """result.json's "truth": how the returned genotype and the best one evaluated fare in the ground-truth
    table (marked as such: the search never uses it unless its fitness is the table)."""
    table, best = search.truth, search.population[0].genotype
    evaluated = max(table.accuracy(key) for key in search.seen) if search.seen else None
    return {
        "table": table.name,
        "used_by_search": search.config.fitness == "table",
        "best_accuracy": table.accuracy(best),
        "best_percentile": table.percentile(best),
        "best_rank": table.rank(best),
        "best_regret": table.regret(best),
        "table_best_accuracy": table.best().accuracy,
        "best_evaluated_accuracy": evaluated,
        "architectures": len(table),
    }


def checkpoint_state(search: Search) -> dict[str, Any]:
    """What checkpoint.pt holds: the config, the counters, the population, every genotype seen, the warm-up's
    trained paths so far, the supernet, the optimizer, the batch stream's position and every RNG state."""
    return {
        "format": "nasviz-checkpoint", "version": 1, "config": search.config.to_dict(),
        "generation": search.generation, "warmup_done": search.warmup_done, "steps": search.steps,
        "evaluations": search.evaluations, "wall_time_s": search.wall_time_s,
        **search.population.state(), "seen": sorted(search.seen), "warmup_log": search.warmup_log.state(),
        **({} if search.supernet is None else {"supernet": search.supernet.state_dict(),
                                               "optimizer": search.optimizer.state_dict(),
                                               "stream": search.stream.state_dict()}),
        "rng": {"ga": search.rng_ga.getstate(), "paths": search.rng_paths.getstate(), "torch": torch.get_rng_state(),
                **({"noise": search.rng_noise.getstate()} if search.config.table_noise else {})},
    }


def restore_state(search: Search, state: dict[str, Any], source: str | Path = "the checkpoint") -> None:
    """Put `checkpoint_state`'s content back into `search`; CheckpointError (naming `source`) where it does not
    fit: a field missing, a genotype that does not parse, weights of another shape."""
    try:
        search.generation, search.warmup_done, search.steps = state["generation"], state["warmup_done"], state["steps"]
        search.evaluations, search.wall_time_s = state["evaluations"], state["wall_time_s"]
        search.population = Population.from_state(state)
        search.seen = set(state["seen"])
        search.warmup_log = TrainLog.from_state(state["warmup_log"])
        if search.supernet is not None:
            search.supernet.load_state_dict(state["supernet"])
            search.optimizer.load_state_dict(state["optimizer"])
            search.stream.load_state_dict(state["stream"])
        if search.config.table_noise:
            search.rng_noise.setstate(_random_state(state["rng"]["noise"]))
        search.rng_ga.setstate(_random_state(state["rng"]["ga"]))
        search.rng_paths.setstate(_random_state(state["rng"]["paths"]))
        torch.set_rng_state(state["rng"]["torch"])
    except NasvizError as exc:
        raise CheckpointError(f"{source} cannot be resumed: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # missing fields, wrong shapes
        raise CheckpointError(f"{source} does not match this search ({type(exc).__name__}: {one_line(exc)})") \
            from None


def _random_state(state) -> tuple:
    """A `random.Random` state as `setstate` wants it (a checkpoint holds its tuples as lists)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
