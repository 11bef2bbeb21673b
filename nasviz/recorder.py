"""What a search writes into its run directory (config.json, events.jsonl, history.jsonl, checkpoint.pt and
result.json; without a run directory, nothing) and the formats of a history row, the result and a checkpoint."""

from __future__ import annotations

import platform
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nasviz import dirlock, ga, rundir
from nasviz.errors import CheckpointError, NasvizError, one_line
from nasviz.events import Event, TrainLog
from nasviz.latency.budget import result_fields as latency_result
from nasviz.population import Individual, Population
from nasviz.space import Genotype
from nasviz.version import __version__

if TYPE_CHECKING:
    from nasviz.search import Search


class Recorder:
    """The writer of one run directory (`run_dir` None: a search that writes nothing).

    A new run's folder is checked when the recorder is made and created by `start`, so a search that fails
    while it sets up leaves nothing behind; a resumed run's folder must exist. From `start` to `close` the
    recorder holds the run directory's lock (`nasviz.dirlock`): one writer per run directory. After `close`, a
    later write takes the lock again, unless another search wrote there meanwhile."""

    def __init__(self, run_dir: str | Path | None, *, resuming: bool = False) -> None:
        self.resuming = resuming
        self.run_dir: Path | None = None
        if run_dir is not None:
            self.run_dir = rundir.check_existing(run_dir) if resuming else rundir.check_new(run_dir)
        self._events: rundir.JsonlAppender | None = None
        self._token = object()  # who this writer is, for the run directory's lock
        self._lock: dirlock.FolderLock | None = None
        self._mark: tuple | None = None  # the run's files as this recorder left them (see `rundir.fingerprint`)
        self.events_logged = 0
        self.run_id = uuid.uuid4().hex
        """The run's identity (a resumed run keeps its own): in every checkpoint and result.json."""
        """Lines in events.jsonl (a checkpoint records it, so a resume drops the events logged after it)."""

    def start(self, config: dict[str, Any], generation: int, result: dict[str, Any] | None = None,
              events: int | None = None) -> None:
        """Lock the run directory (creating a new run's), then write config.json (and, when given, result.json:
        a resumed run's files then agree); when resuming, first drop what the last checkpoint does not cover
        (temporary files, history rows after `generation`, event lines after the first `events`)."""
        if self.run_dir is None:
            return
        try:
            if self.resuming:
                self._take(rundir.lock(self.run_dir))
                rundir.check_no_links(self.run_dir)
                rundir.remove_temporaries(self.run_dir)
                rundir.keep_history(self.run_dir, generation)
                self.events_logged = rundir.keep_events(self.run_dir, events)
            else:
                self._take(rundir.start_new(self.run_dir))
            rundir.write_json(self.run_dir / rundir.CONFIG, config)
            if result is not None:
                rundir.write_json(self.run_dir / rundir.RESULT, result)
        except BaseException:
            self.close()
            raise
        self._mark = rundir.fingerprint(self.run_dir)

    def _take(self, lock: dirlock.FolderLock) -> None:
        lock.adopt(self._token)
        self._lock = lock
        weakref.finalize(self, lock.release_by, self._token)  # a search dropped without close() lets go too

    def _writable(self) -> Path:
        """The run directory, once this recorder is its writer; CheckpointError if another writer took over."""
        assert self.run_dir is not None
        if self._lock is not None and self._lock.owned_by(self._token):
            return self.run_dir
        lock = rundir.lock(self.run_dir)
        if lock.owner is not None or rundir.fingerprint(self.run_dir) != self._mark:
            lock.release_if_unowned()
            raise CheckpointError(f"another search wrote {self.run_dir} after this one; this one no longer writes "
                                  "there (resume the run to continue it)")
        self._take(lock)
        return self.run_dir

    def event(self, event: Event) -> None:
        """Append the event to events.jsonl (opened at the first event, until `close`)."""
        if self.run_dir is None:
            return
        run_dir = self._writable()
        if self._events is None:
            self._events = rundir.JsonlAppender(run_dir / rundir.EVENTS)
        self._events(event.to_json())
        self.events_logged += 1

    def generation(self, row: dict[str, Any]) -> None:
        """Append a generation's row to history.jsonl."""
        if self.run_dir is not None:
            rundir.append_jsonl(self._writable() / rundir.HISTORY, row)
            self._mark = rundir.fingerprint(self.run_dir)

    def checkpoint(self, state: dict[str, Any], result: dict[str, Any]) -> None:
        """Write checkpoint.pt, then result.json (each atomically)."""
        if self.run_dir is not None:
            run_dir = self._writable()
            rundir.save_checkpoint(run_dir / rundir.CHECKPOINT, state)
            rundir.write_json(run_dir / rundir.RESULT, result)
            self._mark = rundir.fingerprint(run_dir)

    @property
    def last_checkpoint(self) -> Path | None:
        """The checkpoint a failed search can be resumed from, if there is one."""
        path = self.run_dir / rundir.CHECKPOINT if self.run_dir is not None else None
        return path if path is not None and path.exists() else None

    def close(self) -> None:
        """Close events.jsonl and let go of the run directory's lock (a later write takes both again)."""
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._lock is not None:
            self._lock.release_by(self._token)
            self._lock = None


def history_row(search: Search, region: Population, trained: TrainLog) -> dict[str, Any]:
    """A generation's history.jsonl row: every individual of the region, the surviving population (best
    first), the best, the mean fitness and the paths trained."""
    population = search.population
    return {
        "generation": search.generation,
        "supernet_steps": search.steps,
        "evaluations": search.evaluations,
        "diagnostic_evaluations": search.diagnostic_evaluations,
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
    """result.json's content: best genotype and fitness, top-k, method, switches, budgets (supernet steps; the
    search's own evaluations and, apart, the diagnostic ones), versions; with objective=pareto, the final
    population's non-dominated front."""
    c = search.config
    top = [_summary(i) for i in list(search.population)[: c.top_k]]
    return {
        "run_id": search.recorder.run_id,
        "finished": search.done,
        "best_genotype": top[0]["genotype"] if top else None,
        "best_fitness": top[0]["fitness"] if top else None,
        "best_params": top[0]["params"] if top else None,
        "top_k": top,
        "method": c.method,
        "switches": {"finetune": c.uses_finetune, "path_sampling": c.path_sampling,
                     "reevaluate_parents": c.reevaluate_parents, "equal_compute": c.equal_compute,
                     "tie_break": c.tie_break, "lr_schedule": c.lr_schedule},
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
        "diagnostic_evaluations": search.diagnostic_evaluations,
        "genotypes_evaluated": len(search.seen),
        "device": str(search.device),
        "eval_precision": search.precision,
        **({"processes": search.ranks.size} if search.ranks.size > 1 else {}),
        "versions": {"nasviz": __version__, "torch": torch.__version__, "python": platform.python_version()},
        **({"truth": _truth_summary(search)} if search.truth is not None and len(search.population) else {}),
        **({"objective": c.objective, "pareto_size": c.pareto_size, "front": pareto_front(search.population,
                                                                                           c.pareto_size)}
           if c.objective == "pareto" else {}),
        **latency_result(search),
    }


def _summary(individual: Individual) -> dict[str, Any]:
    """An individual as result.json lists it: genotype, fitness, params and (where counted) FLOPs."""
    flops = {} if individual.flops is None else {"flops": individual.flops}
    latency = {} if individual.latency_ms is None else {"latency_ms": individual.latency_ms}
    return {"genotype": str(individual.genotype), "fitness": individual.fitness, "params": individual.params,
            **flops, **latency}


def pareto_front(population: Population, size: str = "params") -> list[dict[str, Any]]:
    """The members of `population` no other member dominates on (fitness up, `size` down: "params" or "latency"),
    smallest first."""
    sizes = population.latency if size == "latency" else population.params
    front = ga.non_dominated_sort(ga.size_objectives(population.fitness, sizes))
    members = sorted((front[0] if front else []), key=lambda i: (sizes[i], -population[i].fitness))
    return [_summary(population[i]) for i in members]


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
        "evaluations": search.evaluations, "diagnostic_evaluations": search.diagnostic_evaluations,
        "wall_time_s": search.wall_time_s, "run_id": search.recorder.run_id,
        "events": search.recorder.events_logged + 1,  # events.jsonl's lines, the Checkpoint event that follows included
        **search.population.state(), "seen": sorted(search.seen), "warmup_log": search.warmup_log.state(),
        **({} if search.supernet is None else {"supernet": search.supernet.state_dict(),
                                               "optimizer": search.optimizer.state_dict(),
                                               "stream": search.stream.state_dict()}),
        "rng": {"ga": search.rng_ga.getstate(), "paths": search.rng_paths.getstate(), "torch": torch.get_rng_state(),
                **({"noise": search.rng_noise.getstate()} if search.config.table_noise else {})},
        **({"processes": search.ranks.size} if search.ranks.size > 1 else {}),  # a resume runs on as many
    }


def restore_state(search: Search, state: dict[str, Any], source: str | Path = "the checkpoint") -> None:
    """Put `checkpoint_state`'s content back into `search`; CheckpointError (naming `source`) where it does not
    fit: a field missing, a genotype that does not parse, weights of another shape."""
    check_state(state, source)
    search.recorder.run_id = state.get("run_id") or search.recorder.run_id
    try:
        search.generation, search.warmup_done, search.steps = state["generation"], state["warmup_done"], state["steps"]
        search.evaluations, search.wall_time_s = state["evaluations"], state["wall_time_s"]
        search.diagnostic_evaluations = state.get("diagnostic_evaluations", 0)  # counted apart since issue 13
        search.population = Population.from_state(state)
        search.seen = set(state["seen"])
        search.warmup_log = TrainLog.from_state(state["warmup_log"])
        if search.supernet is not None:
            search.supernet.load_state_dict(state["supernet"])
            search.optimizer.load_state_dict(state["optimizer"])
            _check_optimizer(search.optimizer)
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


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _list_of(value: Any, check) -> bool:
    return isinstance(value, list) and all(check(v) for v in value)


def _random_state_ok(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3 and _is_int(value[0])
            and _list_of(list(value[1]) if isinstance(value[1], (list, tuple)) else None, _is_int)
            and (value[2] is None or _is_number(value[2])))


def check_state(state: dict[str, Any], source: str | Path = "the checkpoint") -> None:
    """CheckpointError (naming `source` and the field) unless `state` has `checkpoint_state`'s structure: every
    field present with its type, the population's parallel lists of one length. Checked before a resume touches
    any file."""
    import torch

    config = state.get("config")
    config = config if isinstance(config, dict) else {}
    n = len(state["population"]) if isinstance(state.get("population"), list) else -1
    checks: list[tuple[str, bool]] = [
        ("generation", _is_int(state.get("generation"), -1)),
        ("warmup_done", _is_int(state.get("warmup_done"))),
        ("steps", _is_int(state.get("steps"))),
        ("evaluations", _is_int(state.get("evaluations"))),
        ("diagnostic_evaluations", state.get("diagnostic_evaluations") is None
         or _is_int(state.get("diagnostic_evaluations"))),
        ("wall_time_s", _is_number(state.get("wall_time_s")) and state["wall_time_s"] >= 0),
        ("events", state.get("events") is None or _is_int(state.get("events"))),
        ("processes", state.get("processes") is None or _is_int(state.get("processes"), 1)),
        ("run_id", state.get("run_id") is None or isinstance(state.get("run_id"), str)),
        ("population", _list_of(state.get("population"), lambda v: isinstance(v, str))),
        ("fitness", _list_of(state.get("fitness"), _is_number) and len(state["fitness"]) == n),
        ("params", _list_of(state.get("params"), _is_int) and len(state["params"]) == n),
        ("fitness_at", _list_of(state.get("fitness_at"), lambda v: _is_int(v, -1)) and len(state["fitness_at"]) == n),
        ("seen", _list_of(state.get("seen"), lambda v: isinstance(v, str))),
        ("warmup_log", isinstance(state.get("warmup_log"), dict)
         and _list_of(state["warmup_log"].get("paths"), lambda v: isinstance(v, str))
         and _list_of(state["warmup_log"].get("loss"), _is_number)
         and _list_of(state["warmup_log"].get("accuracy"), _is_number)
         and len(state["warmup_log"]["paths"]) == len(state["warmup_log"]["loss"])
         == len(state["warmup_log"]["accuracy"])),
        ("rng", isinstance(state.get("rng"), dict) and _random_state_ok(state["rng"].get("ga"))
         and _random_state_ok(state["rng"].get("paths")) and isinstance(state["rng"].get("torch"), torch.Tensor)
         and ("noise" not in state["rng"] or _random_state_ok(state["rng"]["noise"]))),
    ]
    if config.get("fitness", "supernet") != "table":
        stream = state.get("stream")
        checks += [
            ("supernet", isinstance(state.get("supernet"), dict)
             and all(isinstance(v, torch.Tensor) for v in state["supernet"].values())),
            ("optimizer", isinstance(state.get("optimizer"), dict) and isinstance(state["optimizer"].get("state"), dict)
             and isinstance(state["optimizer"].get("param_groups"), list)),
            ("stream", isinstance(stream, dict) and isinstance(stream.get("generator"), torch.Tensor)
             and all(_is_int(stream.get(k)) for k in ("position", "epoch", "size", "batch_size"))
             and isinstance(stream.get("perm"), torch.Tensor) and stream["perm"].dtype == torch.int64
             and stream["perm"].shape == (stream["size"],) and stream["position"] <= stream["size"]
             and torch.equal(stream["perm"].sort().values, torch.arange(stream["size"]))),
        ]
    generations, population = config.get("generations"), config.get("population")
    checks += [
        ("generation", not _is_int(generations) or not _is_int(state.get("generation"), -1)
         or state["generation"] <= generations),
        ("population", not _is_int(state.get("generation"), 0) or not _is_int(population) or n == population),
    ]
    for name, ok in checks:
        if not ok:
            raise CheckpointError(f"{source} is damaged or not a nasviz search checkpoint: its field {name!r} is "
                                  f"missing or has the wrong type or length; nothing was changed")
    for text in state["population"]:  # parsed, never evaluated
        try:
            Genotype.parse(text)
        except NasvizError as exc:
            raise CheckpointError(f"{source} cannot be resumed: {exc}") from None


def check_resumable(state: dict[str, Any], run_dir: Path, processes: int = 1, force: bool = False) -> None:
    """CheckpointError unless `run_dir`'s checkpoint `state` is whole (`check_state`) and its own (`check_belongs`),
    and (unless `force`) it is resumed on as many processes as it ran on (BatchNorm's per-process batch statistics
    make another number another experiment)."""
    check_state(state, run_dir / rundir.CHECKPOINT)
    check_belongs(state, run_dir, run_dir / rundir.CHECKPOINT)
    ran_on = state.get("processes", 1)
    if ran_on != processes and not force:
        raise CheckpointError(f"{run_dir} ran on {ran_on} process(es), and this resume has {processes}; allowed: "
                              f"resume it on {ran_on} (torchrun's nproc_per_node), or override explicitly to accept",
                              setting="force")


def check_belongs(state: dict[str, Any], run_dir: Path, source: str | Path = "the checkpoint") -> None:
    """CheckpointError unless the checkpoint `state` belongs to the run in `run_dir`: the run id that result.json
    records, and the population history.jsonl records for the checkpoint's generation (a checkpoint copied in from
    another run would continue in this run's files)."""
    result = rundir.read_json_or_none(run_dir / rundir.RESULT)
    recorded = result.get("run_id") if isinstance(result, dict) else None
    if state.get("run_id") and recorded and recorded != state["run_id"]:
        raise CheckpointError(f"{source} belongs to another run (run id {state['run_id']}, but "
                              f"{run_dir / rundir.RESULT} records {recorded}); nothing was changed")
    generation = state.get("generation")
    rows = [r for r in rundir.read_jsonl(run_dir / rundir.HISTORY)
            if isinstance(r, dict) and r.get("generation") == generation]
    if rows and isinstance(rows[-1].get("population"), list) and rows[-1]["population"] != state["population"]:
        raise CheckpointError(f"{source} belongs to another run: its generation {generation} is not the one "
                              f"{run_dir / rundir.HISTORY} records; nothing was changed")


def _check_optimizer(optimizer) -> None:
    """ValueError where a loaded SGD state does not fit its weights (torch checks only the number of them): a
    momentum buffer of another shape, a hyper-parameter of the wrong type."""
    import torch

    for group in optimizer.param_groups:
        for name in ("lr", "momentum", "dampening", "weight_decay"):
            if not _is_number(group.get(name)):
                raise ValueError(f"optimizer {name}={group.get(name)!r} is not a number")
        for p in group["params"]:
            buffer = optimizer.state.get(p, {}).get("momentum_buffer")
            if buffer is not None and (not isinstance(buffer, torch.Tensor) or buffer.shape != p.shape):
                raise ValueError(f"an optimizer momentum of shape {tuple(getattr(buffer, 'shape', ()))} for a weight "
                                 f"of shape {tuple(p.shape)}")


def _random_state(state) -> tuple:
    """A `random.Random` state as `setstate` wants it (a checkpoint holds its tuples as lists)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
