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

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nasviz.errors import ConfigError, NasvizError, one_line
from nasviz.runs import rundir
from nasviz.runs.folder_claim import claim_folder
from nasviz.space.genotypes import Genotype, SearchSpace, get_space
from nasviz.table.recipe_config import Recipe

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


ROW_FIELDS: dict[str, type | tuple[type, ...]] = {
    "genotype": str, "seed": int, "test_accuracy": (int, float), "train_loss": (int, float), "params": int,
    "flops": int, "seconds": (int, float)}
"""Every build row's fields and their JSON types (numbers finite; `cpu_seconds` is optional)."""


def row_problem(row: object) -> str | None:
    """What is wrong with a build row (None: nothing): not an object, a field missing, of the wrong type or not
    finite."""
    if not isinstance(row, dict):
        return f"a {type(row).__name__}, not an object"
    for name, kind in ROW_FIELDS.items():
        value = row.get(name)
        if name not in row:
            return f"a row without {name!r}"
        if not isinstance(value, kind) or isinstance(value, bool) or (
                isinstance(value, float) and not math.isfinite(value)):
            return f"a row with {name}={str(value)[:40]!r}"
    extra = row.get("cpu_seconds", 0)
    if not isinstance(extra, (int, float)) or isinstance(extra, bool) or not math.isfinite(extra):
        return f"a row with cpu_seconds={str(extra)[:40]!r}"
    if not 0 <= row["test_accuracy"] <= 1 or row["seconds"] < 0:
        return f"a row with test_accuracy={row['test_accuracy']!r}, seconds={row['seconds']!r}"
    return None


def read_rows(folder: Path, skipped: list[str] | None = None) -> list[dict]:
    """Every finished, well-formed row of every shard file in `folder`; what is wrong with each damaged one
    (`row_problem`) is appended to `skipped`."""
    rows = []
    for path in sorted(Path(folder).glob("rows-*-of-*.jsonl")):
        for r in rundir.read_jsonl(path):
            problem = row_problem(r)
            if problem is None:
                rows.append(r)
            elif skipped is not None:
                skipped.append(f"{path.name}: {problem}")
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
    return {**a, "recipe": Recipe.from_settings(a["recipe"])} == {**b, "recipe": Recipe.from_settings(b["recipe"])}


def _check_recipe(folder: Path, header: dict) -> None:
    path = folder / RECIPE_FILE
    if path.exists():
        existing = load_header(folder)
        if not _same_header(existing, header):
            raise ConfigError(
                f"{folder} was built with another recipe or space ({path}); use a new folder for this one",
                setting="out")
    else:
        rundir.write_json(path, header)


BUILD_FILE = re.compile(r"recipe\.json|starts\.jsonl|rows-\d+-of-\d+\.jsonl|\.rows-\d+-of-\d+\.lock|\.nasviz\.lock|"
                        r"\..+\.tmp")
"""What a build folder holds (a folder holding anything else is not one, and a build never writes there)."""


def check_build_folder(folder: Path) -> None:
    """ConfigError unless `folder` is new, or a folder that holds only a build's files (`BUILD_FILE`)."""
    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise ConfigError(f"build folder {folder} exists and is not a folder", setting="out")
    if not folder.is_dir():
        return
    foreign = sorted(e.name for e in folder.iterdir() if not BUILD_FILE.fullmatch(e.name))
    if foreign:
        raise ConfigError(f"{folder} holds {foreign[0]!r}, which is not a table build's file; a build writes only "
                          "into a new folder or its own build folder: choose another folder", setting="out")


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
    from nasviz.table.recipe import prepare_data

    k, n = shard
    folder = Path(out)
    header = {"space": space.name, "recipe": recipe.to_dict(), "pilot": list(pilot[:1]) + [list(pilot[1])] if pilot
              else None}
    def check(path: Path, _locked_before: bool) -> None:
        check_build_folder(path)
        _check_recipe(path, header)

    # one writer per shard: each shard has its own lock file in the build folder
    with claim_folder(folder, f"shard {k}/{n} of the build folder", check=check, lock_name=f".rows-{k}-of-{n}.lock"):
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


def _jobs(keys: list[str], rows: list[dict], plan: Plan, pilot: tuple[int, tuple[int, ...]] | None,
          ) -> tuple[list[Job], bool]:
    """The build's jobs known so far (the pilot's, or the plan's given the rows) and whether that list is final."""
    return (pilot_jobs(keys, pilot[0], pilot[1]), True) if pilot else plan_jobs(keys, rows, plan)


def _train_shard(space: SearchSpace, recipe: Recipe, data, folder: Path, keys: list[str], shard: tuple[int, int],
                 plan: Plan, pilot: tuple[int, tuple[int, ...]] | None, limit: int | None,
                 on_row: Callable[[dict, int, int], None] | None) -> int:
    """Train this shard's jobs not done yet (phase 2 once phase 1 completes, up to `limit`), appending each row to
    the shard's file; returns how many were trained."""
    from nasviz.table.recipe import train_and_test  # torch: only when training

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
    header = rundir.read_json(path)
    try:
        if not isinstance(header, dict) or not isinstance(header.get("space"), str):
            raise ConfigError("it holds no object with the space's name")
        get_space(header["space"])
        recipe = Recipe.from_settings(header.get("recipe"), "recipe")
    except NasvizError as exc:
        raise ConfigError(f"{path} is damaged: {one_line(exc)}") from None
    return {**header, "recipe": recipe.to_dict()}
