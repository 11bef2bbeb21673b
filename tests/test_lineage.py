"""Lineage in the run files: ids, parents, operators and changes, fitness stories; resume keeps them; runs recorded
before lineage still read."""

from __future__ import annotations

import random

import pytest
import torch

from nasviz.runs import lineage, rundir
from nasviz.search import ga
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import DARTS, MINI, Genotype, get_space

TABLE = dict(space="mini", fitness="table", generations=5)


def run(config: SearchConfig, out=None) -> list[dict]:
    search = Search(config, out)
    rows = [search.warmup()]
    while not search.done:
        rows.append(search.step())
    search.close()
    return rows


def check_consistent(rows: list[dict], space) -> dict[str, dict]:
    """Every individual has a unique id; parents exist in earlier generations; the changes explain the child."""
    born: dict[str, tuple[int, dict]] = {}
    for row in rows:
        for entry in row["individuals"]:
            if entry["role"] in ("initial", "offspring"):
                assert entry["id"] not in born, entry["id"]
                assert entry["born"] == row["generation"]
                born[entry["id"]] = (row["generation"], entry)
            else:
                assert entry["id"] in born and born[entry["id"]][0] < row["generation"]
        assert row["population_ids"] == [e["id"] for e in sorted(
            (e for e in row["individuals"] if e["selected"]), key=lambda e: row["population"].index(e["genotype"]))]
    for generation, entry in born.values():
        child = space.genes(Genotype.parse(entry["genotype"]))
        assert entry["operator"] in lineage.OPERATORS
        for parent in entry["parents"]:
            assert born[parent][0] < generation  # every parent id exists in an earlier generation
        if entry["operator"] in ("initial", "random"):
            assert entry["parents"] == [] and entry["changes"] is None
            continue
        parents = {p: space.genes(Genotype.parse(born[p][1]["genotype"])) for p in entry["parents"]}
        mutated = {m["gene"]: m for m in (entry["changes"] or {}).get("mutations", ())}
        if entry["operator"].startswith("crossover"):
            sources = entry["changes"]["genes_from"]
            assert len(entry["parents"]) == 2 and set(sources) == set(entry["parents"])
        else:
            assert len(entry["parents"]) == 1 and mutated
            sources = entry["parents"] * len(child)
        for k, gene in enumerate(child):
            origin = parents[sources[k]][k]  # the gene as the named parent had it
            if k not in mutated:
                assert gene == origin, (entry["id"], k)
                continue
            m = mutated[k]
            old, new = tuple(m["old"]), tuple(m["new"])
            assert old in origin and new in gene and old != new  # exactly this edge was replaced
            assert sorted(e for e in origin if e != old) == sorted(e for e in gene if e != new)
            assert m["node"] == space.node_position(k)
    return {key: entry for key, (_, entry) in born.items()}


@pytest.mark.parametrize("method", ["sft-ga", "ga", "random"])
def test_lineage_is_recorded_and_consistent_for_every_method(method):
    rows = run(SearchConfig.from_preset("quick", method=method, **TABLE))
    born = check_consistent(rows, MINI)
    operators = {e["operator"] for e in born.values()}
    if method == "random":
        assert operators == {"initial", "random"}
    else:
        assert {"mutation", "crossover+mutation"} <= operators or {"mutation", "crossover"} <= operators
    records = lineage.individuals(rows)
    assert list(records) == list(born)
    best = rows[-1]["best"]["id"]
    assert records[best]["genotype"] == rows[-1]["best"]["genotype"]
    assert lineage.ancestors(records, best)[0] == best
    assert all(records[a]["born"] <= records[best]["born"] for a in lineage.ancestors(records, best))
    for key, record in records.items():  # fewest mutations from a random genotype, along the recorded parents
        steps = lineage.mutations_from_start(records, key)
        own = len((record["changes"] or {}).get("mutations", ()))
        if record["operator"] in ("initial", "random"):
            assert steps == 0
        else:
            assert steps == own + min(lineage.mutations_from_start(records, p) for p in record["parents"])


def test_supernet_search_records_each_reevaluation_with_its_step():
    rows = run(SearchConfig.from_preset("smoke", seed=2))
    check_consistent(rows, DARTS)
    last = rows[-1]
    for entry in last["individuals"]:
        after = [e for e in entry["story"] if e["stage"] == "after"]
        assert after[-1]["fitness"] == entry["fitness"] and after[-1]["step"] == entry["evaluated_at_step"]
        steps = [e["step"] for e in after]
        assert steps == sorted(set(steps))  # one measurement per version of the weights
        if entry["role"] == "parent":  # fair re-evaluation: once more with the weights fine-tuned this generation
            assert len(after) == last["generation"] - entry["born"] + 1


def test_resume_keeps_ids_and_stories(tmp_path):
    config = SearchConfig.from_preset("quick", **TABLE)
    full = run(config, tmp_path / "full")
    cut = Search(config, tmp_path / "cut")
    cut.step()
    cut.step()
    cut.close()
    del cut
    Search.resume(tmp_path / "cut").run()
    resumed, uncut = rundir.load_history(tmp_path / "cut"), rundir.load_history(tmp_path / "full")
    for key in ("individuals", "population_ids", "best"):
        assert [r[key] for r in resumed] == [r[key] for r in uncut] == [r[key] for r in full]
    assert rundir.lineage(tmp_path / "cut") == rundir.lineage(tmp_path / "full")


def strip_lineage(run_dir) -> None:
    """Make `run_dir` look recorded before lineage: no ids, parents, operators or stories anywhere."""
    rows = rundir.load_history(run_dir)
    for row in rows:
        row.pop("population_ids")
        row["best"].pop("id")
        for entry in row["individuals"]:
            for key in ("id", "born", "operator", "parents", "changes", "story"):
                entry.pop(key)
    rundir.write_jsonl(run_dir / rundir.HISTORY, rows)
    state = rundir.load_search_state(run_dir)
    state.pop("lineage")
    torch.save(state, run_dir / rundir.CHECKPOINT)


def test_old_run_folders_load_and_resume(tmp_path):
    config = SearchConfig.from_preset("quick", **TABLE)
    new = tmp_path / "new"
    run(config.replace(generations=3), new)
    recorded = rundir.lineage(new)
    strip_lineage(new)
    old = rundir.lineage(new)
    assert list(old) == list(recorded)  # the same ids, by the same rule
    for key, record in old.items():
        assert record["genotype"] == recorded[key]["genotype"]
        assert record["generations"] == recorded[key]["generations"]
        if record["born"] == 0:
            assert record["operator"] == "initial" and record["parents"] == []
        else:
            assert record["operator"] is None and record["parents"] is None and not record["lineage_known"]
    some = next(reversed(old))
    assert rundir.individual(new, some)["id"] == some
    with pytest.raises(ValueError, match="no individual 'g99-0'.*allowed"):
        rundir.individual(new, "g99-0")
    # a checkpoint without lineage resumes: members of unknown id, their children named as usual
    resumed = Search.resume(new, {"generations": 5}).run()
    assert resumed["top_k"] == Search(config).run()["top_k"]
    rows = rundir.load_history(new)
    assert rows[4]["individuals"][0].get("id") is None  # a parent read back without its id
    offspring = [e for e in rows[4]["individuals"] if e["role"] == "offspring"]
    assert [e["id"] for e in offspring] == [f"g4-{k}" for k in range(len(offspring))]
    records = rundir.lineage(new)
    assert len(records) == len(recorded) + 2 * config.population
    assert records["g5-0"]["parents"] and all(p is None or p in records for p in records["g5-0"]["parents"])


def test_breed_draws_what_make_offspring_and_the_plain_operators_draw():
    """`breed` only adds provenance: the same children, and the generator left in the same state, as drawing them
    with the public tournament, crossover and mutation."""
    space = get_space("darts")
    rng = random.Random(5)
    parents = ga.random_population(6, rng, set(), space)
    fitness = [rng.random() for _ in parents]
    seen = {space.key(g) for g in parents}
    traced_rng, plain_rng = random.Random(11), random.Random(11)
    children = ga.breed(parents, fitness, traced_rng, n=8, p_c=0.7, p_m=0.3, seen=seen, space=space)
    plain = []
    for _ in range(8):
        while True:
            a = parents[ga.binary_tournament(fitness, plain_rng)]
            b = parents[ga.binary_tournament(fitness, plain_rng)]
            candidate = ga.mutate(ga.crossover(a, b, plain_rng, 0.7, space), plain_rng, 0.3, space)
            if space.key(candidate) not in seen | {space.key(g) for g in plain}:
                plain.append(candidate)
                break
    assert [c.genotype for c in children] == plain
    assert traced_rng.getstate() == plain_rng.getstate()
    again = ga.make_offspring(parents, fitness, random.Random(11), n=8, p_c=0.7, p_m=0.3, seen=seen, space=space)
    assert again == plain
