"""The ground-truth table shipped in the package: complete, honest about its noise, and looked up exactly."""

from __future__ import annotations

import gzip
import json
import random
from importlib import resources

import pytest

from nasviz.space.genotypes import MINI, Genotype
from nasviz.table import available, ground_truth, load
from nasviz.table.build import networks

NAME = "mini-fashion-mnist"


@pytest.fixture(scope="module")
def table():
    return load(NAME)


def test_the_mini_table_ships_small_and_as_plain_data():
    assert NAME in available()
    path = resources.files("nasviz.table") / "data" / f"{NAME}.json.gz"
    raw = path.read_bytes()
    assert len(raw) < 1_000_000
    json.loads(gzip.decompress(raw))  # JSON data, nothing executable


def test_every_network_of_the_space_has_seed_zero(table):
    assert len(table) == 648
    assert set(table.entries) == set(networks(MINI))
    assert all(0 in e.accuracy_by_seed for e in table)
    assert all(0.1 < a < 1.0 for e in table for a in e.accuracy_by_seed.values())


def test_a_quarter_and_the_whole_top_tenth_have_three_seeds(table):
    multi = [e for e in table if len(e.accuracy_by_seed) >= 3]
    assert len(multi) >= len(table) // 4
    top = sorted(table, key=lambda e: -e.accuracy_by_seed[0])[: round(0.1 * len(table))]
    assert all(set(e.accuracy_by_seed) == {0, 1, 2} for e in top)


def test_provenance_and_noise_are_recorded(table):
    starts = table.provenance["built_by"]
    assert starts and all({"argv", "commit", "torch", "cpu", "date"} <= set(s) for s in starts)
    assert table.provenance["trainings"] >= 648 + 2 * 162 and table.provenance["cpu_seconds"] > 0
    assert table.recipe["dataset"] == "fashion-mnist"
    noise = table.noise
    assert noise["architectures"] == 648 and noise["multi_seed_architectures"] >= 162
    assert -1 <= noise["seed_tau_b"]["tau_b"] <= 1 and -1 <= noise["top_seed_tau_b"]["tau_b"] <= 1
    assert 0 < noise["seed_sd"]["median_sd"] < 0.05


def test_lookups_agree_for_equivalent_genotypes(table):
    rng = random.Random(0)
    for key in rng.sample(sorted(table.entries), 20):
        g = MINI.parse(key)
        swapped = Genotype(normal=(g.normal[1], g.normal[0], *g.normal[2:]),
                           reduce=(g.reduce[1], g.reduce[0], *g.reduce[2:]))
        assert table.accuracy(swapped) == table.accuracy(key) == table.entries[key].accuracy
        assert table.rank(str(swapped)) == table.rank(key)


def test_ranks_percentiles_and_the_best(table):
    best = table.best()
    assert table.rank(best.genotype) == 1 and table.percentile(best.genotype) == 100.0
    assert table.regret(best.genotype) == 0.0
    assert all(e.accuracy <= best.accuracy for e in table)
    worst = min(table, key=lambda e: e.accuracy)
    assert table.percentile(worst.genotype) == 0.0


def test_a_mini_search_is_judged_by_the_shipped_table():
    assert ground_truth("mini", "fashion-mnist") is load(NAME) or len(ground_truth("mini", "fashion-mnist")) == 648
    assert ground_truth("darts", "fashion-mnist") is None
