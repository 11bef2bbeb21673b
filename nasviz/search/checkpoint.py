"""A search's own state (`SearchState`: counters, population, every genotype seen, random generators) and the
checks a checkpoint passes before a resume touches any file (`check_state`, `check_belongs`, `check_resumable`).
A checkpoint is `SearchState.state_dict()` plus the config, the run's identity and the evaluator's part
(`checkpoint_dict`; `restore` reads one back into a search's state and evaluator)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nasviz.errors import CheckpointError, NasvizError, one_line
from nasviz.runs import rundir
from nasviz.runs.events import TrainLog
from nasviz.search.evaluators import evaluator_class, random_state
from nasviz.search.final_pick import Candidate
from nasviz.search.fitness_sources import SOURCES
from nasviz.search.population import Population
from nasviz.space.genotypes import Genotype

if TYPE_CHECKING:
    from nasviz.search.evaluators import Evaluator

COUNTERS = ("generation", "warmup_done", "steps", "evaluations", "diagnostic_evaluations", "wall_time_s")


@dataclass
class SearchState:
    """Where a search stands: everything of it that goes into a checkpoint, the evaluator's part aside."""

    seed: int
    generation: int = -1
    """-1: warm-up not finished; 0: initial population; g: after generation g."""
    warmup_done: int = 0
    steps: int = 0
    """Supernet training steps so far; also the "version" of the weights."""
    evaluations: int = 0
    """The search's own: new genotypes and re-evaluated parents."""
    diagnostic_evaluations: int = 0
    """For the figures only (fitness before fine-tuning, `record_before`)."""
    wall_time_s: float = 0.0
    population: Population = field(default_factory=Population)
    """The survivors, best first."""
    seen: set[str] = field(default_factory=set)
    """Keys of every genotype evaluated."""
    warmup_log: TrainLog = field(default_factory=TrainLog)
    latest: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Every genotype evaluated: key -> (text, the last fitness it received); the final pick's candidates."""
    final: list[Candidate] | None = None
    """The final pick's candidates and their retrain scores so far (None: not begun, or final_pick=fitness)."""
    rng_ga: random.Random = field(init=False)
    rng_paths: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng_ga = random.Random(self.seed)
        self.rng_paths = random.Random(self.seed + 1_000_003)

    def state_dict(self) -> dict[str, Any]:
        """The counters, the population, the genotypes seen, the warm-up log and the random generators (torch's
        global generator included)."""
        return {**{k: getattr(self, k) for k in COUNTERS}, **self.population.state(), "seen": sorted(self.seen),
                "warmup_log": self.warmup_log.state(), "latest": sorted(self.latest.values()),
                **({} if self.final is None else {"final": [c.to_json() for c in self.final]}),
                "rng": {"ga": self.rng_ga.getstate(), "paths": self.rng_paths.getstate(),
                        "torch": torch.get_rng_state()}}

    def load_state_dict(self, state: dict[str, Any], key: Callable[[Genotype], str] = Genotype.key) -> None:
        """Continue from a `state_dict()` (checked by `check_state` first); `key`: the space's genotype key."""
        for k in COUNTERS:
            setattr(self, k, state.get(k, 0))  # diagnostic_evaluations: counted apart since issue 13
        self.population = Population.from_state(state)
        self.seen = set(state["seen"])
        self.warmup_log = TrainLog.from_state(state["warmup_log"])
        latest = state.get("latest") or [(str(m.genotype), m.fitness) for m in self.population]  # older checkpoints
        self.latest = {key(Genotype.parse(text)): (text, value) for text, value in latest}
        self.final = None if state.get("final") is None else [Candidate.from_json(c) for c in state["final"]]
        self.rng_ga.setstate(random_state(state["rng"]["ga"]))
        self.rng_paths.setstate(random_state(state["rng"]["paths"]))
        torch.set_rng_state(state["rng"]["torch"])


def checkpoint_dict(config: dict[str, Any], state: SearchState, evaluator: Evaluator, run_id: str, events: int,
                    processes: int) -> dict[str, Any]:
    """checkpoint.pt's content: the search's `config` (as a dict), its `state`, its `evaluator`'s part, the run's id,
    the lines events.jsonl will have with the Checkpoint event that follows (`events`), and, where it ran on several,
    the number of processes."""
    searched, own = state.state_dict(), evaluator.state_dict()
    rng = {**searched.pop("rng"), **evaluator.random_states()}
    return {"format": "nasviz-checkpoint", "version": 1, "config": config, **searched, "run_id": run_id,
            "events": events, **own, "rng": rng, **({"processes": processes} if processes > 1 else {})}


def restore(checkpoint: dict[str, Any], state: SearchState, evaluator: Evaluator, source: str | Path,
            key: Callable[[Genotype], str]) -> None:
    """Load `checkpoint` (from `source`) into a search's `state` and `evaluator` (`key`: its space's genotype key);
    CheckpointError, naming `source`, where it is damaged or does not fit this search."""
    check_state(checkpoint, source)
    try:
        state.load_state_dict(checkpoint, key)
        evaluator.load_state_dict(checkpoint)
    except NasvizError as exc:
        raise CheckpointError(f"{source} cannot be resumed: {exc}") from None
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:  # missing fields, wrong shapes
        raise CheckpointError(f"{source} does not match this search ({type(exc).__name__}: {one_line(exc)})") \
            from None


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    """A finite int or float (NaN and infinity in a checkpoint are damage: they would change the search)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _list_of(value: Any, check) -> bool:
    return isinstance(value, list) and all(check(v) for v in value)


def _random_state_ok(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) == 3 and _is_int(value[0])
            and _list_of(list(value[1]) if isinstance(value[1], (list, tuple)) else None, _is_int)
            and (value[2] is None or _is_number(value[2])))


def check_state(state: dict[str, Any], source: str | Path = "the checkpoint") -> None:
    """CheckpointError (naming `source` and the field) unless `state` has a checkpoint's structure: every field
    present with its type, the population's parallel lists of one length, the evaluator's fields whole."""
    config = state.get("config")
    config = config if isinstance(config, dict) else {}
    n = len(state["population"]) if isinstance(state.get("population"), list) else -1
    log = state.get("warmup_log")
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
        ("lineage", state.get("lineage") is None or _list_of(state["lineage"], lambda v: isinstance(v, dict)
                                                             and isinstance(v.get("story", []), list))
         and len(state["lineage"]) == n),
        ("warmup_log", isinstance(log, dict) and _list_of(log.get("paths"), lambda v: isinstance(v, str))
         and _list_of(log.get("loss"), _is_number) and _list_of(log.get("accuracy"), _is_number)
         and len(log["paths"]) == len(log["loss"]) == len(log["accuracy"])),
        ("latest", state.get("latest") is None or _list_of(state["latest"], lambda v: isinstance(v, (list, tuple))
         and len(v) == 2 and isinstance(v[0], str) and _is_number(v[1]))),
        ("final", state.get("final") is None or _list_of(state["final"], lambda v: isinstance(v, dict)
         and isinstance(v.get("genotype"), str) and _is_number(v.get("fitness"))
         and _list_of(v.get("retrain_scores"), _is_number))),
        ("rng", isinstance(state.get("rng"), dict) and _random_state_ok(state["rng"].get("ga"))
         and _random_state_ok(state["rng"].get("paths")) and isinstance(state["rng"].get("torch"), torch.Tensor)
         and ("noise" not in state["rng"] or _random_state_ok(state["rng"]["noise"]))),
    ]
    fitness = config.get("fitness", "supernet")
    if isinstance(fitness, str) and fitness in SOURCES:
        checks += evaluator_class(fitness).check_state(state, config)
    generations, population = config.get("generations"), config.get("population")
    checks += [
        ("generation", not _is_int(generations) or not _is_int(state.get("generation"), -1)
         or state["generation"] <= generations),
        ("population", not _is_int(state.get("generation"), 0) or not _is_int(population) or n == population),
    ]
    for name, ok in checks:
        if not ok:
            raise CheckpointError(f"{source} is damaged or not a nasviz search checkpoint: its field {name!r} is "
                                  f"missing, not finite, or has the wrong type or length; nothing was changed")
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
    if not force:
        check_config_file(state, run_dir, run_dir / rundir.CHECKPOINT)
    ran_on = state.get("processes", 1)
    if ran_on != processes and not force:
        raise CheckpointError(f"{run_dir} ran on {ran_on} process(es), and this resume has {processes}; allowed: "
                              f"resume it on {ran_on} (torchrun's nproc_per_node), or override explicitly to accept",
                              setting="force")


def check_belongs(state: dict[str, Any], run_dir: Path, source: str | Path = "the checkpoint") -> None:
    """CheckpointError unless the checkpoint `state` belongs to the run in `run_dir`: the run id that result.json
    and events.jsonl's checkpoint events record, the population history.jsonl records for the checkpoint's
    generation, and no generation recorded beyond the one after it (a checkpoint copied in from another run, or an
    older copy of the run's own, would continue in this run's files and drop what they record since)."""
    result = rundir.read_json_or_none(run_dir / rundir.RESULT)
    recorded = result.get("run_id") if isinstance(result, dict) else None
    if state.get("run_id") and recorded and recorded != state["run_id"]:
        raise CheckpointError(f"{source} belongs to another run (run id {state['run_id']}, but "
                              f"{run_dir / rundir.RESULT} records {recorded}); nothing was changed")
    check_events(state, run_dir, source)
    generation = state.get("generation")
    history = run_dir / rundir.HISTORY
    all_rows = [r for r in rundir.read_jsonl(history) if isinstance(r, dict)]
    rows = [r for r in all_rows if r.get("generation") == generation]
    if rows and isinstance(rows[-1].get("population"), list) and rows[-1]["population"] != state["population"]:
        raise CheckpointError(f"{source} belongs to another run: its generation {generation} is not the one "
                              f"{history} records; nothing was changed")
    later = [r["generation"] for r in all_rows if _is_int(r.get("generation")) and isinstance(generation, int)
             and r["generation"] > generation + 1]  # the row after it may precede its checkpoint (a crash between)
    if later:
        where = "the warm-up" if generation == -1 else f"generation {generation}"
        raise CheckpointError(f"{source} is at {where}, but {history} records generation {max(later)}: it is "
                              "another run's checkpoint or an older copy of this run's, and resuming it would drop "
                              "the generations recorded since; nothing was changed")
    check_history(run_dir, generation, source)


def check_events(state: dict[str, Any], run_dir: Path, source: str | Path) -> None:
    """CheckpointError where events.jsonl's checkpoint events name another run than the checkpoint `state` (the
    run's identity where result.json is gone; events of runs recorded before they named it are not checked)."""
    mine = state.get("run_id")
    if not mine:
        return
    path = run_dir / rundir.EVENTS
    other = next((r["run_id"] for r in rundir.read_jsonl(path) if isinstance(r, dict) and r.get("type") == "checkpoint"
                  and isinstance(r.get("run_id"), str) and r["run_id"] != mine), None)
    if other is not None:
        raise CheckpointError(f"{source} belongs to another run (run id {mine}, but {path} records checkpoints of "
                              f"run {other}); nothing was changed")


def check_history(run_dir: Path, generation: int, source: str | Path) -> None:
    """CheckpointError unless history.jsonl records every generation 0..`generation` of the checkpoint `source`
    (rows after it are dropped on resume): a missing file or a gap cannot be repaired from the checkpoint, which
    holds only the last population, so the resume is refused."""
    if not isinstance(generation, int) or generation < 0:
        return
    history = run_dir / rundir.HISTORY
    found = {r["generation"] for r in rundir.read_jsonl(history)
             if isinstance(r, dict) and isinstance(r.get("generation"), int) and not isinstance(r["generation"], bool)}
    missing = [g for g in range(generation + 1) if g not in found]
    if missing:
        what = "is missing" if not (history.exists() or history.is_symlink()) else \
            f"lacks generation(s) {', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}"
        raise CheckpointError(f"{history} {what}, but {source} is at generation {generation}; the run's record "
                              "cannot be repaired from the checkpoint, so it is not resumed (nothing was changed)")


def check_config_file(state: dict[str, Any], run_dir: Path, source: str | Path) -> None:
    """CheckpointError where config.json records settings other than the checkpoint's (beyond those a resume may
    change): the checkpoint was copied in from another run."""
    from nasviz.search.config import RESUMABLE_CHANGES, SearchConfig

    saved = rundir.load_config(run_dir)
    if saved is None:
        return
    try:
        mine, theirs = SearchConfig.from_dict(saved).to_dict(), SearchConfig.from_dict(state["config"]).to_dict()
    except NasvizError:
        return  # a damaged config.json is rewritten from the checkpoint
    differ = sorted(k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k))
    if differ:
        k = differ[0]
        raise CheckpointError(f"{source} belongs to another run: it has {k}={theirs.get(k)!r}, but "
                              f"{run_dir / rundir.CONFIG} records {k}={mine[k]!r}; nothing was changed (override "
                              "explicitly to accept)", setting="force")

