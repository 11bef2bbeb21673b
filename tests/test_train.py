"""Tests for nasviz.train.steps: supernet steps, BatchNorm recalibration, fitness, divergence."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasviz.errors import DivergedError, NasvizError
from nasviz.space.genotypes import FIXTURES, sample_genotype
from nasviz.space.supernet import Supernet
from nasviz.train.steps import (
    accuracy,
    batchnorms,
    check_finite,
    fitness,
    recalibrate_bn,
    train_steps,
)

# One thread: the machine's two cores are shared, and OpenMP spinning makes tiny convolutions 100x slower.
torch.set_num_threads(1)
C, LAYERS, CLASSES = 4, 3, 4
DARTS_V2 = FIXTURES["DARTS_V2"]


def paths(n: int, seed: int) -> list:
    rng = random.Random(seed)
    return [sample_genotype(rng) for _ in range(n)]


@pytest.fixture
def synthetic():
    """16 images of 4 classes, each class a fixed random template plus noise: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)
    templates = torch.randn(CLASSES, 1, 28, 28, generator=g)
    y = torch.arange(16) % CLASSES
    x = templates[y] + 0.3 * torch.randn(16, 1, 28, 28, generator=g)
    return x, y


@pytest.fixture
def supernet():
    torch.manual_seed(0)
    return Supernet(1, CLASSES, C, LAYERS)


# ------------------------------------------------------------------------------------------------ BN recalibration


def scramble_bn(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for bn in batchnorms(model):
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 5)
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) * 10 + 0.1)
        bn.num_batches_tracked.fill_(123)


def test_recalibrate_bn_is_independent_of_previous_state(supernet, synthetic):
    x, _ = synthetic
    g, other = DARTS_V2, paths(1, seed=3)[0]
    calibration = [(x[:8], None), (x[8:], None)]
    a, b = supernet, copy.deepcopy(supernet)
    # give the copy a very different BatchNorm history: garbage statistics, then training on another path
    scramble_bn(b, seed=1)
    b.train()
    with torch.no_grad():
        for _ in range(3):
            b(torch.randn(8, 1, 28, 28) * 4 + 2, other)
    with torch.no_grad():
        a.eval()
        stale_a, stale_b = a(x, g), b(x, g)
    assert not torch.allclose(stale_a, stale_b, atol=1e-3)  # the histories do matter before recalibration

    recalibrate_bn(a, g, calibration)
    recalibrate_bn(b, g, calibration)
    assert not a.training and not b.training  # left in eval mode
    with torch.no_grad():
        out_a, out_b = a(x, g), b(x, g)
    assert torch.allclose(out_a, out_b, atol=1e-6)
    with torch.no_grad():
        assert torch.equal(out_a, a(x, g))  # deterministic in eval mode
    # the update rule is restored for later training
    assert all(bn.momentum == 0.1 for bn in batchnorms(a))


def test_recalibrate_bn_is_an_exact_average(supernet, synthetic):
    x, _ = synthetic
    batches = [(x[i : i + 4], None) for i in range(0, 16, 4)]
    scramble_bn(supernet, seed=2)
    recalibrate_bn(supernet, DARTS_V2, batches)
    stem_bn = supernet.stem[1]
    with torch.no_grad():
        features = supernet.stem[0](x)  # the stem BN's input
    expected_mean = features.mean(dim=(0, 2, 3))
    assert torch.allclose(stem_bn.running_mean, expected_mean, atol=1e-5)
    assert stem_bn.num_batches_tracked.item() == len(batches)
    # the order of the batches does not matter (a plain average, not an exponential one)
    before = [bn.running_var.clone() for bn in batchnorms(supernet)]
    recalibrate_bn(supernet, DARTS_V2, batches[::-1])
    for old, bn in zip(before, batchnorms(supernet)):
        assert torch.allclose(old, bn.running_var, rtol=1e-4, atol=1e-6)


def test_recalibrate_bn_uses_every_batch_on_the_path(supernet, synthetic):
    x, _ = synthetic
    g = paths(1, seed=8)[0]
    recalibrate_bn(supernet, g, [(x[:5], None), (x[5:], None)])
    prefixes = path_prefixes(supernet, g)
    path_norms = [m for name, m in supernet.named_modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and on_path(name + ".", prefixes)]
    assert len(path_norms) > 2 * LAYERS + 1
    assert all(bn.num_batches_tracked.item() == 2 for bn in path_norms)


class Lookup(nn.Module):
    """A stand-in model whose prediction for an image is the class stored in its first pixel."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x, genotype=None):
        return F.one_hot(x[:, 0, 0, 0].long(), CLASSES).float() + 0 * self.dummy


def test_accuracy_counts_samples_not_batches():
    predicted = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    labels = torch.tensor([0, 1, 2, 0, 0, 0, 0, 0])  # right: 0, 1, 2 in the first batch of 3 and one of 5 after
    x = predicted.float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    batches = [(x[:3], labels[:3]), (x[3:], labels[3:])]
    assert accuracy(Lookup(), None, batches) == pytest.approx(4 / 8)  # the mean of batch means would be 0.6
    assert accuracy(Lookup(), DARTS_V2, batches) == pytest.approx(4 / 8)
    assert accuracy(Lookup(), None, []) == 0.0


def test_fitness_in_unit_interval_and_reproducible(supernet, synthetic):
    x, y = synthetic
    calibration = [(x[:8], y[:8])]
    evaluation = [(x[:8], y[:8]), (x[8:], y[8:])]
    g, others = DARTS_V2, paths(3, seed=4)
    first = fitness(supernet, g, calibration, evaluation)
    assert 0.0 <= first <= 1.0
    assert first * 16 == int(first * 16)  # a fraction of the 16 images
    for other in others:  # evaluating other paths in between changes BN statistics; fitness must not care
        assert 0.0 <= fitness(supernet, other, calibration, evaluation) <= 1.0
    supernet.train()
    with torch.no_grad():
        supernet(torch.randn(8, 1, 28, 28) * 3, others[0])  # stale statistics from a training step
    assert fitness(supernet, g, calibration, evaluation) == first
    # and it is the path's accuracy with recalibrated statistics, computed by hand
    recalibrate_bn(supernet, g, calibration)
    with torch.no_grad():
        by_hand = (supernet(x, g).argmax(1) == y).float().mean().item()
    assert first == pytest.approx(by_hand)


# ------------------------------------------------------------------------------------------------ training steps


def mean_loss(model: Supernet, x, y, genotypes) -> float:
    model.train()
    with torch.no_grad():
        return sum(F.cross_entropy(model(x, g), y).item() for g in genotypes) / len(genotypes)


def test_train_steps_with_uniform_sampler_learns(supernet, synthetic):
    x, y = synthetic
    rng = random.Random(0)
    held_out_paths = paths(4, seed=100)  # never trained directly: weight sharing must carry over
    calibration = [(x, y)]
    before_loss = mean_loss(supernet, x, y, held_out_paths)
    before_fitness = [fitness(supernet, g, calibration, [(x, y)]) for g in held_out_paths]
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1, momentum=0.9)
    seen = []
    records = train_steps(
        supernet, lambda: (x, y), optimizer, lambda: sample_genotype(rng), 30, phase="warm-up", first_step=10,
        on_step=seen.append,
    )
    assert [r["step"] for r in records] == list(range(10, 40))
    assert seen == records
    assert all(r["phase"] == "warm-up" and r["lr"] == 0.1 and 0 <= r["accuracy"] <= 1 for r in records)
    assert len({r["genotype"].key() for r in records}) == 30  # a fresh uniform path every step
    after_loss = mean_loss(supernet, x, y, held_out_paths)
    assert after_loss < 0.8 * before_loss, (before_loss, after_loss)
    after_fitness = [fitness(supernet, g, calibration, [(x, y)]) for g in held_out_paths]
    assert sum(after_fitness) > sum(before_fitness), (before_fitness, after_fitness)
    assert sum(r["loss"] for r in records[-10:]) < 0.9 * sum(r["loss"] for r in records[:10])


def path_prefixes(model: Supernet, genotype) -> set[str]:
    """Parameter/module name prefixes of the operations `genotype` runs in `model`."""
    out = set()
    for i, cell in enumerate(model.cells):
        for k, (op, inp) in enumerate(genotype.reduce if cell.reduction else genotype.normal):
            out.add(f"cells.{i}.edges.{k // 2}_{inp}.{op}.")
    return out


def on_path(name: str, prefixes: set[str]) -> bool:
    return ".edges." not in name or any(name.startswith(prefix) for prefix in prefixes)


def test_train_steps_trains_only_the_sampled_path(supernet, synthetic):
    x, y = synthetic
    before = {name: p.detach().clone() for name, p in supernet.named_parameters()}
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    train_steps(supernet, lambda: (x[:8], y[:8]), optimizer, lambda: DARTS_V2, 2, phase="fine-tune")
    prefixes = path_prefixes(supernet, DARTS_V2)
    moved = {name for name, p in supernet.named_parameters() if not torch.equal(before[name], p)}
    # weight decay and momentum must not move weights that were never on the path; all path weights learn
    assert moved == {name for name, _ in supernet.named_parameters() if on_path(name, prefixes)}


def test_nan_input_raises_diverged_before_any_update(supernet, synthetic):
    x, y = synthetic
    poisoned = x[:4].clone()
    poisoned[0, 0, 3, 3] = float("nan")
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1)
    before = {name: p.detach().clone() for name, p in supernet.named_parameters()}
    with pytest.raises(DivergedError) as info:
        train_steps(supernet, lambda: (poisoned, y[:4]), optimizer, lambda: DARTS_V2, 3, phase="fine-tune",
                    first_step=7)
    message = str(info.value)
    assert "fine-tune" in message and "step 7" in message and "learning rate 0.1" in message
    assert "\n" not in message and isinstance(info.value, NasvizError)
    for name, p in supernet.named_parameters():
        assert torch.equal(before[name], p), name  # the bad step changed no weight


def test_huge_learning_rate_diverges_naming_step_and_lr(supernet, synthetic):
    x, y = synthetic
    rng = random.Random(1)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=1e30)
    pattern = r"warm-up diverged: loss is (nan|inf) at step \d+ with learning rate 1e\+30"
    with pytest.raises(DivergedError, match=pattern):
        train_steps(supernet, lambda: (x, y), optimizer, lambda: sample_genotype(rng), 10, phase="warm-up")


def test_check_finite():
    assert check_finite(torch.tensor(1.5), 0, 0.1, "x") == 1.5
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(DivergedError, match="step 3 with learning rate 0.025"):
            check_finite(torch.tensor(bad), 3, 0.025, "training")
