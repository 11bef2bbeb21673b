"""The fitness seam: every registered source scores a search's candidates through one `Evaluator`, the search
never asks which; zero-cost proxies and sizes as fitness in both spaces; adding a source is one class and one
registry line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from nasviz import Search, SearchConfig
from nasviz.errors import ConfigError
from nasviz.search import evaluators, proxies
from nasviz.search.fitness_sources import SOURCES, Source

PACKAGE = Path(__file__).resolve().parents[1] / "nasviz"


def small(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{"population": 4, "generations": 2, **overrides})


@pytest.mark.parametrize(("space", "fitness", "method"), [("mini", "naswot", "ga"), ("mini", "flops", "random"),
                                                          ("darts", "synflow", "ga"), ("darts", "params", "random")])
def test_proxy_and_size_fitness_search_without_supernet(space, fitness, method):
    search = Search(small(space=space, fitness=fitness, method=method, seed=2))
    result = search.run()
    assert search.supernet is None and result["supernet_steps"] == {"warmup": 0, "finetune": 0, "total": 0}
    assert result["evaluations"] == 4 * 3  # no weights change, so parents are never re-evaluated
    best = search.space.parse(result["best_genotype"])
    data = search.evaluator.dataset()
    images, labels = proxies.proxy_batch(data, search.config.proxy_batch_size, 2)
    direct = proxies.score(fitness, best, data_shape=data.shape, num_classes=data.num_classes,
                           channels=search.config.channels, layers=search.config.layers, images=images,
                           labels=labels, seed=2)
    assert result["best_fitness"] == pytest.approx(direct, rel=1e-9)
    assert result["best_fitness"] == max(search.population.fitness)
    again = Search(small(space=space, fitness=fitness, method=method, seed=2)).run()
    assert (again["best_genotype"], again["best_fitness"]) == (result["best_genotype"], result["best_fitness"])


def test_proxy_scores_are_computed_once_per_network(monkeypatch):
    calls = []
    real = proxies.score
    monkeypatch.setattr(proxies, "score", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    search = Search(small(space="mini", fitness="grad_norm", method="ga"))
    search.run()
    assert len(calls) == len({search.space.key(g) for g in calls}) == search.result()["genotypes_evaluated"]


def test_a_new_source_is_one_class_and_one_registry_line(monkeypatch):
    class ChannelCount(evaluators.Evaluator):  # fewer skip connections is better: a toy but complete source
        def score(self, genotype):
            return -float(sum(op == "skip_connect" for op, _ in genotype.normal))

    monkeypatch.setattr(evaluators, "ChannelCount", ChannelCount, raising=False)
    monkeypatch.setitem(SOURCES, "no-skips", Source("ChannelCount"))
    config = small(space="mini").replace(fitness="no-skips")
    search = Search(config)
    result = search.run()
    assert search.evaluator.__class__ is ChannelCount and search.supernet is None
    assert result["best_fitness"] == max(search.population.fitness) == 0.0


def test_the_search_never_branches_on_the_fitness_source():
    """No module of the package compares `fitness` with a source's name: they ask the evaluator or the registry."""
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and "fitness" in ast.unparse(node.left):
                names = [c.value for c in node.comparators if isinstance(c, ast.Constant)]
                assert not set(names) & set(SOURCES), f"{name}: {ast.unparse(node)}"


def test_unknown_fitness_is_one_line():
    with pytest.raises(ConfigError, match="fitness 'synflw' .did you mean 'synflow'.*allowed: supernet, table"):
        small(fitness="synflw")


def test_evaluator_checks_its_checkpoint_part():
    state = {"supernet": {"w": torch.zeros(1)}, "optimizer": {"state": {}, "param_groups": []}, "stream": None}
    assert dict(evaluators.SupernetEvaluator.check_state(state, {}))["stream"] is False
    assert evaluators.TableEvaluator.check_state(state, {}) == []
