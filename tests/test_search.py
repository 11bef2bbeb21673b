"""The search engine: methods, switches, fairness of re-evaluation, determinism and exact resume."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from nasviz.errors import CheckpointError, ConfigError
from nasviz.runs.events import Checkpoint, Evaluation, Generation, from_json
from nasviz.runs.rundir import load_history
from nasviz.search import ga
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import Genotype

TINY = dict(warmup_steps=4, population=3, generations=2, finetune_steps=6, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2)


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{**TINY, **overrides})


def run(tmp_path, name="run", **overrides) -> tuple[dict, list[dict]]:
    search = Search(tiny(**overrides), tmp_path / name)
    result = search.run()
    return result, load_history(tmp_path / name)


def fitness_values(rows: list[dict]) -> list[list[float]]:
    return [[i["fitness"] for i in row["individuals"]] for row in rows]


def test_run_writes_the_run_files(tmp_path):
    result, rows = run(tmp_path)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "history.jsonl", "result.json", "checkpoint.pt", "events.jsonl"} <= files
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert result["finished"] and result["method"] == "sft-ga"
    assert Genotype.parse(result["best_genotype"]) == Genotype.parse(rows[-1]["population"][0])
    assert result["best_fitness"] == max(rows[-1]["fitness"])
    assert json.loads((tmp_path / "run" / "result.json").read_text())["best_genotype"] == result["best_genotype"]
    assert result["supernet_steps"] == {"warmup": 4, "finetune": 12, "total": 16}
    for row in rows[1:]:
        roles = Counter(i["role"] for i in row["individuals"])
        assert roles == {"parent": 3, "offspring": 3}
        assert sum(i["selected"] for i in row["individuals"]) == 3
        assert len(row["trained_paths"]) == 6
    assert len(rows[0]["trained_paths"]) == 4  # the warm-up paths


def test_same_seed_same_result_and_other_seed_differs(tmp_path):
    a, rows_a = run(tmp_path, "a")
    b, rows_b = run(tmp_path, "b")
    c, _ = run(tmp_path, "c", seed=1)
    assert (a["best_genotype"], a["best_fitness"]) == (b["best_genotype"], b["best_fitness"])
    assert fitness_values(rows_a) == fitness_values(rows_b)
    assert [r["population"] for r in rows_a] == [r["population"] for r in rows_b]
    assert [r["population"] for r in rows_a] != [r["population"] for r in load_history(tmp_path / "c")]


@pytest.mark.parametrize("stop_after", ["warmup-chunk", "initial", "generation-1"])
def test_resume_ends_where_the_uninterrupted_run_ends(tmp_path, stop_after):
    full, full_rows = run(tmp_path, "full")
    search = Search(tiny(), tmp_path / "cut")
    if stop_after == "warmup-chunk":
        stop = search.request_stop
        search.subscribe(lambda e: stop() if isinstance(e, Checkpoint) else None)
        search.warmup()
        assert search.generation == -1 and 0 < search.warmup_done < 4
    elif stop_after == "initial":
        search.warmup()
    else:
        assert search.step()["generation"] == 0
        assert search.step()["generation"] == 1
    del search
    resumed = Search.resume(tmp_path / "cut").run()
    rows = load_history(tmp_path / "cut")
    assert (resumed["best_genotype"], resumed["best_fitness"]) == (full["best_genotype"], full["best_fitness"])
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert fitness_values(rows) == fitness_values(full_rows)
    assert resumed["top_k"] == full["top_k"]


def test_resume_drops_history_rows_written_after_the_checkpoint(tmp_path):
    search = Search(tiny(), tmp_path / "r")
    search.step()
    search.step()
    history = tmp_path / "r" / "history.jsonl"
    rows = history.read_text().splitlines()
    history.write_text("\n".join(rows + [rows[-1].replace('"generation": 1', '"generation": 2')]) + "\n{torn")
    Search.resume(tmp_path / "r")
    assert [r["generation"] for r in load_history(tmp_path / "r")] == [0, 1]


def test_resume_refuses_a_different_config_unless_forced(tmp_path):
    Search(tiny(), tmp_path / "r").warmup()
    with pytest.raises(CheckpointError, match="population=4.*the run used population=3"):
        Search.resume(tmp_path / "r", {"population": "4"})
    extended = Search.resume(tmp_path / "r", {"generations": 3})
    assert extended.config.generations == 3
    assert Search.resume(tmp_path / "r", {"population": 4}, force=True).config.population == 4


def test_a_forced_override_of_the_optimizer_settings_reaches_the_resumed_optimizer(tmp_path):
    Search(tiny(weight_decay=3e-4, momentum=0.9), tmp_path / "r").warmup()
    kept = Search.resume(tmp_path / "r")
    assert {(g["weight_decay"], g["momentum"]) for g in kept.optimizer.param_groups} == {(3e-4, 0.9)}
    changed = Search.resume(tmp_path / "r", {"weight_decay": 0.0, "momentum": 0.5}, force=True)
    assert {(g["weight_decay"], g["momentum"]) for g in changed.optimizer.param_groups} == {(0.0, 0.5)}
    assert changed.optimizer.state_dict()["state"]  # the momentum buffers themselves are kept


def test_a_new_search_never_overwrites_a_run(tmp_path):
    Search(tiny(), tmp_path / "r").warmup()
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a search run"):
        Search(tiny(), tmp_path / "r")
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before


def test_fair_reevaluation_compares_only_fitness_under_the_current_weights(tmp_path):
    _, rows = run(tmp_path, generations=3)
    for row in rows[1:]:
        assert {i["evaluated_at_step"] for i in row["individuals"]} == {row["supernet_steps"]}
        parents = [i for i in row["individuals"] if i["role"] == "parent"]
        previous = rows[row["generation"] - 1]
        assert sorted(i["fitness_before"] for i in parents) == sorted(previous["fitness"])


def test_without_reevaluation_parents_keep_stale_fitness(tmp_path):
    _, rows = run(tmp_path, reevaluate_parents=False)
    for row in rows[1:]:
        parents = [i for i in row["individuals"] if i["role"] == "parent"]
        assert all(i["evaluated_at_step"] < row["supernet_steps"] for i in parents)
        assert all(i["fitness"] == i["fitness_before"] for i in parents)


def test_population_sampling_trains_every_region_member_equally(tmp_path):
    _, rows = run(tmp_path, finetune_steps=12, path_sampling="population")
    for row in rows[1:]:
        region = Counter(Genotype.parse(i["genotype"]).key() for i in row["individuals"])
        trained = Counter(Genotype.parse(p).key() for p in row["trained_paths"])
        assert set(trained) == set(region)
        assert set(trained.values()) == {2}


def test_region_sampling_draws_each_gene_from_the_region(tmp_path):
    _, rows = run(tmp_path, path_sampling="region")
    for row in rows[1:]:
        members = [Genotype.parse(i["genotype"]) for i in row["individuals"]]
        region = ga.region_frequencies(members)
        for path in row["trained_paths"]:
            for k, (a, b) in enumerate(Genotype.parse(path).nodes()):
                assert (a[1], b[1]) in region.pairs[k]
                assert a[0] in region.ops[k][a[1]] and b[0] in region.ops[k][b[1]]


@pytest.mark.parametrize(
    "overrides",
    [
        dict(method="ga"),
        dict(method="random"),
        dict(method="sft-ga", finetune=False),
        dict(path_sampling="uniform"),
        dict(record_before=False),
    ],
    ids=["ga", "random", "no-finetune", "uniform", "no-before"],
)
def test_every_method_and_switch_runs_with_the_same_evaluation_budget(tmp_path, overrides):
    result, rows = run(tmp_path, **overrides)
    assert result["finished"]
    assert result["genotypes_evaluated"] == 3 * (2 + 1)
    finetuned = result["switches"]["finetune"]
    assert result["supernet_steps"]["finetune"] == (12 if finetuned else 0)
    for row in rows[1:]:
        assert bool(row["trained_paths"]) == finetuned
        offspring = [Genotype.parse(i["genotype"]) for i in row["individuals"] if i["role"] == "offspring"]
        assert len({g.key() for g in offspring}) == 3


def test_baselines_never_finetune_and_refuse_to(tmp_path):
    assert not tiny(method="ga").uses_finetune and not tiny(method="random").uses_finetune
    assert tiny().uses_finetune
    with pytest.raises(ConfigError, match="finetune=True contradicts method='ga'"):
        tiny(method="ga", finetune=True)


def test_events_reach_subscribers_and_the_event_log(tmp_path):
    search = Search(tiny(), tmp_path / "r")
    seen: list = []
    unsubscribe = search.subscribe(seen.append)
    search.warmup()
    unsubscribe()
    search.step()
    types = Counter(e.kind for e in seen)
    assert types["train_step"] == 4 and types["evaluation"] == 3 and types["generation"] == 1
    assert types["new_best"] == 1
    assert all(e.generation == 0 for e in seen if isinstance(e, Evaluation))
    logged = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    assert Counter(e["type"] for e in logged)["generation"] == 2
    # the log holds exactly what subscribers saw, and reads back into the same events
    assert logged[: len(seen)] == [e.to_json() for e in seen]
    assert [from_json(line) for line in logged[: len(seen)]] == seen
    assert isinstance(from_json(logged[-1]), type(seen[-1])) and any(isinstance(e, Generation) for e in seen)


def test_without_a_run_directory_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = Search(tiny(generations=1)).run()
    assert result["finished"] and list(tmp_path.iterdir()) == []


def open_files() -> set[str]:
    """The files this process holds open (Linux: /proc/self/fd)."""
    fds = Path("/proc/self/fd")
    found = set()
    for fd in os.listdir(fds):
        try:
            found.add(os.readlink(fds / fd))
        except OSError:  # closed meanwhile
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_the_event_log_is_closed_when_the_search_ends_or_run_returns(tmp_path):
    search = Search(tiny(generations=1), tmp_path / "r")
    search.warmup()
    log = str((tmp_path / "r" / "events.jsonl").resolve())
    assert log in open_files()  # open while the search goes on step by step
    search.step()  # the last generation
    assert search.done and log not in open_files()
    stopped = Search(tiny(), tmp_path / "s")
    stopped.subscribe(lambda e: stopped.request_stop() if isinstance(e, Checkpoint) else None)
    assert not stopped.run()["finished"]
    assert str((tmp_path / "s" / "events.jsonl").resolve()) not in open_files()
def test_class_preset_sits_between_smoke_and_quick():
    smoke, klass, quick = (SearchConfig.from_preset(name) for name in ("smoke", "class", "quick"))
    assert klass.preset == "class"
    # the quick preset's network (so class and quick runs are comparable), at a smaller budget than quick's
    assert (klass.channels, klass.layers) == (quick.channels, quick.layers)
    for knob in ("warmup_steps", "population", "generations", "finetune_steps", "fitness_images"):
        assert getattr(smoke, knob) <= getattr(klass, knob) <= getattr(quick, knob), knob
    assert smoke.evaluation_budget < klass.evaluation_budget < quick.evaluation_budget
    assert klass.warmup_steps * klass.finetune_steps < quick.warmup_steps * quick.finetune_steps
    # Stop during the warm-up answers at least every quarter of it
    assert klass.checkpoint_every <= klass.warmup_steps // 4
