"""Size-aware search: max_params / max_flops keep every evaluated network within the limits (for each method),
limits that leave nothing are refused before any training, the GA's `accept` predicate, FLOPs in the history,
and objective=pareto (NSGA-II survival, the front in result.json)."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from table_support import synthetic_table

from nasviz.data.loading import dataset_info
from nasviz.errors import ConfigError
from nasviz.runs.rundir import load_history
from nasviz.search import ga
from nasviz.search.budget import Limits, Size, measure_search_network, smallest
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import DARTS, FIXTURES, MINI, Genotype
from nasviz.space.network import SearchNetwork, count_flops, count_params
from nasviz.table import read

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(warmup_steps=4, population=3, generations=2, finetune_steps=6, fitness_images=64, weight_images=256,
            batch_size=16, eval_batch_size=64, bn_batches=1, checkpoint_every=2, top_k=2)


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{**TINY, **overrides})


def size_of(genotype: Genotype, config: SearchConfig) -> Size:
    shape, classes = dataset_info(config.dataset)  # (1, 28, 28), 10
    return measure_search_network(genotype, shape, classes, config.channels, config.layers)


@pytest.fixture(scope="module")
def medians() -> dict[str, int]:
    """Median parameters and FLOPs of random networks at the smoke size: limits that admit about half of them."""
    rng, config = random.Random(123), tiny()
    sizes = [size_of(DARTS.sample(rng), config) for _ in range(9)]
    return {"max_params": int(statistics.median(s.params for s in sizes)),
            "max_flops": int(statistics.median(s.flops for s in sizes))}


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> Path:
    return synthetic_table(tmp_path_factory.mktemp("table") / "synthetic.json.gz")


def table_search(table_file: Path, **overrides) -> SearchConfig:
    return SearchConfig.from_preset("quick", space="mini", fitness="table", table=str(table_file),
                                    **{"population": 8, "generations": 6, **overrides})


# --- sizes ------------------------------------------------------------------------------------------------------
def test_sizes_are_counted_as_the_network_module_counts_them():
    genotype, config = FIXTURES["DARTS_V2"], tiny()
    with torch.device("meta"):
        net = SearchNetwork(genotype, 1, 10, config.channels, config.layers)
    before = torch.get_rng_state()
    assert size_of(genotype, config) == Size(count_params(net), count_flops(net, (1, 28, 28)))
    assert torch.equal(torch.get_rng_state(), before)  # measuring draws no random numbers: runs stay seeded


def test_the_smallest_network_is_all_pooling_and_no_random_network_is_smaller():
    config, rng = tiny(), random.Random(5)
    least = smallest(DARTS, lambda g: size_of(g, config))
    pooling = DARTS.from_genes([(("max_pool_3x3", 0), ("max_pool_3x3", 1))] * 8)
    assert least == size_of(pooling, config)
    for _ in range(3):
        other = size_of(DARTS.sample(rng), config)
        assert other.params >= least.params and other.flops >= least.flops


def test_limits_admit_and_describe():
    limits = Limits(max_params=100, max_flops=None)
    assert limits and not Limits()
    assert limits.admits(Size(100, 10**9)) and not limits.admits(Size(101, 0))
    assert str(Limits(5, 7)) == "max_params=5 and max_flops=7"
    with pytest.raises(ConfigError, match=r"^max_flops=9 leaves no architecture: the smallest x has 10 FLOPs per "
                                          r"image; allowed: max_flops >= 10 or none$"):
        Limits(max_flops=9).check_smallest(Size(1, 10), "x")


# --- the GA's accept predicate -----------------------------------------------------------------------------------
def small(genotype: Genotype) -> bool:
    """A cheap stand-in for a size limit: at most four convolutions in the normal cell."""
    return sum("conv" in op for op, _ in genotype.normal) <= 4


def test_generation_functions_draw_only_accepted_genotypes():
    rng = random.Random(0)
    population = ga.random_population(12, rng, set(), accept=small)
    assert all(small(g) for g in population) and len({g.key() for g in population}) == 12
    children = ga.make_offspring(population, [0.5] * 12, rng, n=12, p_c=0.9, p_m=0.5, seen=set(), accept=small)
    assert all(small(g) for g in children)
    assert not all(small(DARTS.sample(random.Random(s))) for s in range(20))  # the predicate does refuse some


def test_an_always_true_predicate_changes_no_draw_and_an_impossible_one_fails_in_bounded_tries():
    plain = ga.random_population(5, random.Random(3), set(), MINI)
    assert ga.random_population(5, random.Random(3), set(), MINI, accept=lambda g: True) == plain
    parents = ga.random_population(4, random.Random(1), set())
    kids = ga.make_offspring(parents, [0.1, 0.2, 0.3, 0.4], random.Random(2), n=4, p_c=0.9, p_m=0.2, seen=set())
    assert ga.make_offspring(parents, [0.1, 0.2, 0.3, 0.4], random.Random(2), n=4, p_c=0.9, p_m=0.2, seen=set(),
                             accept=lambda g: True) == kids
    calls = []
    with pytest.raises(RuntimeError, match="no unseen acceptable genotype found in 50 random draws"):
        ga.random_population(2, random.Random(0), set(), accept=lambda g: calls.append(g) and False, max_tries=50)
    assert len(calls) == 50


# --- searches within the limits ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, objective", [("sft-ga", "pareto"), ("ga", "fitness"), ("random", "fitness")])
def test_every_individual_of_a_search_is_within_the_limits(tmp_path, medians, method, objective):
    search = Search(tiny(method=method, objective=objective, **medians), tmp_path / "run")
    result = search.run()
    limits = Limits(**medians)
    rows = load_history(tmp_path / "run")
    individuals = [i for row in rows for i in row["individuals"]]
    assert result["finished"] and len({i["genotype"] for i in individuals}) == 3 * 3
    for i in individuals:
        assert limits.admits(Size(i["params"], i["flops"])), i
        assert Size(i["params"], i["flops"]) == size_of(Genotype.parse(i["genotype"]), search.config)
    assert any(not limits.admits(s) for s in search.sizes.measured.values())  # larger ones were drawn, re-drawn
    assert all(limits.admits(Size(t["params"], t["flops"])) for t in result["top_k"])
    if objective == "pareto":
        last = [dict(fitness=f, params=p) for f, p in zip(rows[-1]["fitness"], rows[-1]["params"])]
        assert result["front"] and all(not any(dominated(m, o) for o in last) for m in result["front"])


def test_limits_leaving_no_network_are_refused_in_one_line_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "nasviz", "search", "--preset", "smoke", "--set", "max_params=100",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "max_params=100 leaves no architecture: the smallest darts network at channels=4, layers=3 has" in \
        proc.stderr and "allowed: max_params >= " in proc.stderr
    assert not out.exists()


def test_limits_leaving_too_few_networks_are_refused_before_the_search_starts(tmp_path, table_file):
    least = min(e.params for e in read(table_file))
    with pytest.raises(ConfigError, match=f"^max_params={least - 1} leaves no architecture"):
        Search(table_search(table_file, max_params=least - 1), tmp_path / "a")
    # exactly one network is that small: not enough for a population of 8
    with pytest.raises(ConfigError, match=rf"^max_params={least} leaves too few networks: fewer than population=8 "
                                          r"found in 200 random draws each .*allowed: larger limits or none$"):
        Search(table_search(table_file, max_params=least), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_limits_are_settings_like_any_other():
    config = SearchConfig.from_preset("smoke").replace(max_params="50000", max_flops="none", objective="pareto")
    assert (config.max_params, config.max_flops, config.objective) == (50000, None, "pareto")
    assert (SearchConfig().max_params, SearchConfig().max_flops, SearchConfig().objective) == (None, None, "fitness")
    with pytest.raises(ConfigError, match=r"^max_params=0 is out of range; allowed: an integer >= 1 or none$"):
        SearchConfig.from_preset("smoke", max_params=0)
    with pytest.raises(ConfigError, match=r"^unknown objective 'paretto' \(did you mean 'pareto'\?\); "
                                          r"allowed: fitness, pareto$"):
        SearchConfig.from_preset("smoke", objective="paretto")


# --- objective = pareto --------------------------------------------------------------------------------------------
def dominated(a: dict, b: dict) -> bool:
    """Whether `b` dominates `a` on (fitness up, params down)."""
    return b["fitness"] >= a["fitness"] and b["params"] <= a["params"] and \
        (b["fitness"] > a["fitness"] or b["params"] < a["params"])


def test_pareto_survival_is_nsga2_and_the_result_lists_the_non_dominated_front(tmp_path, table_file):
    result = Search(table_search(table_file, objective="pareto", table_noise=0.02), tmp_path / "p").run()
    rows = load_history(tmp_path / "p")
    for row in rows[1:]:
        region = row["individuals"]
        kept = ga.pareto_selection([i["fitness"] for i in region], [i["params"] for i in region], 8)
        assert {region[k]["genotype"] for k in kept} == set(row["population"])
        assert row["fitness"] == sorted(row["fitness"], reverse=True)  # survivors are listed best first
    last = [dict(genotype=g, fitness=f, params=p) for g, f, p in
            zip(rows[-1]["population"], rows[-1]["fitness"], rows[-1]["params"])]
    front = result["front"]
    assert result["objective"] == "pareto" and front
    assert [m["params"] for m in front] == sorted(m["params"] for m in front)
    for member in front:
        assert not any(dominated(member, other) for other in last)
    outside = [m for m in last if m["genotype"] not in {f["genotype"] for f in front}]
    assert all(any(dominated(m, f) for f in front) for m in outside)
    plain = Search(table_search(table_file, table_noise=0.02), tmp_path / "f").run()
    populations = [r["population"] for r in load_history(tmp_path / "f")]
    assert "front" not in plain and populations[0] == rows[0]["population"]  # the same initial population ...
    assert populations != [r["population"] for r in rows]  # ... but another survival


def test_a_pareto_search_with_limits_resumes_exactly(tmp_path, table_file):
    config = table_search(table_file, objective="pareto", table_noise=0.02, max_params=1300)
    full = Search(config, tmp_path / "full").run()
    cut = Search(config, tmp_path / "cut")
    cut.step()
    cut.step()
    del cut
    resumed = Search.resume(tmp_path / "cut").run()
    assert resumed["front"] == full["front"] and resumed["top_k"] == full["top_k"]
    assert load_history(tmp_path / "cut") == [dict(r, wall_time_s=c["wall_time_s"]) for r, c in
                                              zip(load_history(tmp_path / "full"), load_history(tmp_path / "cut"))]
    assert all(i["params"] <= 1300 for r in load_history(tmp_path / "cut") for i in r["individuals"])
