"""Build the ground-truth table: train every genotype of a space from scratch, resumably and in shards.

A build folder holds `recipe.json` (the recipe and space, fixed at the first start) and one JSON-lines file
per shard, `rows-K-of-N.jsonl`, with one line per finished (genotype, seed) training. A killed build resumes
where it stopped: finished lines are skipped, a line torn by the kill is ignored. Shards run side by side
(one thread each); each holds a lock on its own file, so a shard never has two writers.

The plan has two phases. Phase 1 trains every distinct network of the space once (seed 0). Phase 2, once
phase 1 is complete, trains `extra_seeds` more seeds of the top `top_fraction` of seed 0 plus a sample
stratified over seed 0's accuracy, together at least `multi_seed_fraction` of the space: the architectures
that measure the table's own noise.
"""

from __future__ import annotations

import fcntl
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nasviz.errors import ConfigError
from nasviz.runs import rundir
from nasviz.space.genotypes import Genotype, SearchSpace
from nasviz.table.recipe import Recipe, prepare_data, train_and_test

RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class Plan:
    """Which (genotype, seed) trainings a build makes beyond seed 0 for every network."""

    extra_seeds: tuple[int, ...] = (1, 2)
    top_fraction: float = 0.10
    multi_seed_fraction: float = 0.25
    sample_seed: int = 0


Job = tuple[str, int]
"""(canonical genotype text, seed)."""


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N; a one-line error otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 0 <= int(match[1]) < int(match[2]) <= 64:
        raise ConfigError(f"shard {text!r} is not allowed; allowed: K/N with 0 <= K < N <= 64, e.g. 0/2",
                          setting="shard")
    return int(match[1]), int(match[2])


def networks(space: SearchSpace) -> list[str]:
    """The canonical text of every distinct network of `space`, in a fixed order."""
    keys: dict[str, None] = {}
    for genotype in space.enumerate():
        keys.setdefault(space.key(genotype), None)
    return list(keys)


def read_rows(folder: Path) -> list[dict]:
    """Every finished row of every shard file in `folder`."""
    rows = []
    for path in sorted(Path(folder).glob("rows-*-of-*.jsonl")):
        rows += [r for r in rundir.read_jsonl(path) if isinstance(r, dict) and "genotype" in r and "seed" in r]
    return rows


def phase_two(keys: list[str], rows: list[dict], plan: Plan) -> list[Job] | None:
    """Phase 2's jobs, chosen from seed 0's results; None while phase 1 is incomplete."""
    seed0 = {r["genotype"]: r["test_accuracy"] for r in rows if r["seed"] == 0}
    if any(k not in seed0 for k in keys):
        return None
    ranked = sorted(keys, key=lambda k: (-seed0[k], k))
    top = ranked[: max(1, round(plan.top_fraction * len(keys)))]
    rest = ranked[len(top):]
    want = max(0, round(plan.multi_seed_fraction * len(keys)) - len(top))
    rng = random.Random(plan.sample_seed)
    strata = 10
    sample: list[str] = []
    for s in range(strata):  # the same number from each tenth of the rest, ordered by seed-0 accuracy
        stratum = rest[s * len(rest) // strata:(s + 1) * len(rest) // strata]
        take = want // strata + (1 if s < want % strata else 0)
        sample += rng.sample(stratum, min(take, len(stratum)))
    chosen = top + sorted(sample, key=keys.index)
    return [(k, seed) for seed in plan.extra_seeds for k in chosen]


def plan_jobs(keys: list[str], rows: list[dict], plan: Plan) -> tuple[list[Job], bool]:
    """All jobs known now, and whether the plan is complete (phase 2 decided)."""
    first = [(k, 0) for k in keys]
    second = phase_two(keys, rows, plan)
    return first + (second or []), second is not None


def pilot_jobs(keys: list[str], architectures: int, seeds: tuple[int, ...], sample_seed: int = 0) -> list[Job]:
    """A pilot: `architectures` networks drawn at random, each with every seed in `seeds`."""
    chosen = random.Random(sample_seed).sample(keys, min(architectures, len(keys)))
    return [(k, s) for k in chosen for s in seeds]


def _same_header(a: dict, b: dict) -> bool:
    """Equal space, pilot and recipe (a recipe setting missing from an older header has its default)."""
    return {**a, "recipe": Recipe(**a["recipe"])} == {**b, "recipe": Recipe(**b["recipe"])}


def _check_recipe(folder: Path, header: dict) -> None:
    path = folder / RECIPE_FILE
    if path.exists():
        existing = rundir.read_json(path)
        if not (isinstance(existing, dict) and _same_header(existing, header)):
            raise ConfigError(
                f"{folder} was built with another recipe or space ({path}); use a new folder for this one",
                setting="out")
    else:
        rundir.write_json(path, header)


def _lock(path: Path):
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"another process is already building {path.with_suffix('')}; one writer per shard") from None
    return handle


def build(
    space: SearchSpace,
    recipe: Recipe,
    out: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    plan: Plan = Plan(),
    pilot: tuple[int, tuple[int, ...]] | None = None,
    data=None,
    limit: int | None = None,
    on_row: Callable[[dict, int, int], None] | None = None,
) -> dict:
    """Train this shard's share of the table's jobs that are not done yet; returns a summary.

    `pilot` = (architectures, seeds) builds a pilot instead of the plan. `limit` stops after that many
    trainings (for tests and time-boxed runs); run again to continue."""
    from nasviz.data.loading import load_dataset

    k, n = shard
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    header = {"space": space.name, "recipe": recipe.to_dict(), "pilot": list(pilot[:1]) + [list(pilot[1])] if pilot
              else None}
    _check_recipe(folder, header)
    lock = _lock(folder / f".rows-{k}-of-{n}.lock")
    try:
        keys = networks(space)
        data = prepare_data(load_dataset(recipe.dataset) if data is None else data, recipe)
        trained = _train_shard(space, recipe, data, folder, keys, shard, plan, pilot, limit, on_row)
        rows = read_rows(folder)
        jobs, complete = _jobs(keys, rows, plan, pilot)
        done = {(r["genotype"], r["seed"]) for r in rows}
        return {
            "trained_now": trained,
            "rows": len(done),
            "jobs_known": len(jobs),
            "plan_complete": complete,
            "finished": complete and all(job in done for job in jobs),
        }
    finally:
        lock.close()


def _jobs(keys: list[str], rows: list[dict], plan: Plan, pilot: tuple[int, tuple[int, ...]] | None,
          ) -> tuple[list[Job], bool]:
    """The build's jobs known so far (the pilot's, or the plan's given the rows) and whether that list is final."""
    return (pilot_jobs(keys, pilot[0], pilot[1]), True) if pilot else plan_jobs(keys, rows, plan)


def _train_shard(space: SearchSpace, recipe: Recipe, data, folder: Path, keys: list[str], shard: tuple[int, int],
                 plan: Plan, pilot: tuple[int, tuple[int, ...]] | None, limit: int | None,
                 on_row: Callable[[dict, int, int], None] | None) -> int:
    """Train this shard's jobs not done yet (phase 2 once phase 1 completes, up to `limit`), appending each row to
    the shard's file; returns how many were trained."""
    k, n = shard
    rows_path = folder / f"rows-{k}-of-{n}.jsonl"
    trained = 0
    while True:
        rows = read_rows(folder)
        done = {(r["genotype"], r["seed"]) for r in rows}
        jobs, _complete = _jobs(keys, rows, plan, pilot)
        mine = [job for i, job in enumerate(jobs) if i % n == k]
        todo = [job for job in mine if job not in done]
        if not todo or (limit is not None and trained >= limit):
            return trained
        for key, seed in _take(todo, limit, trained):
            row = {"genotype": key, "seed": seed, **train_and_test(Genotype.parse(key, space), seed, recipe, data)}
            rundir.append_jsonl(rows_path, row)
            trained += 1
            if on_row is not None:
                on_row(row, trained, len(todo))


def _take(todo: list[Job], limit: int | None, trained: int) -> Iterator[Job]:
    return iter(todo if limit is None else todo[: max(0, limit - trained)])


def load_header(folder: str | Path) -> dict:
    """The recipe and space a build folder was started with."""
    path = Path(folder) / RECIPE_FILE
    if not path.exists():
        raise ConfigError(f"{folder} is not a table build folder (no {RECIPE_FILE})")
    return json.loads(path.read_text())
