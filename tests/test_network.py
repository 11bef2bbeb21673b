"""Tests for the supernet and the standalone networks: shapes, weight sharing, single-path cost, counts."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasviz.space import cells
from nasviz.space.cells import edge_key
from nasviz.space.genotypes import CANDIDATE_OPS, FIXTURES, NODES, sample_genotype
from nasviz.space.network import (
    EvalNetwork,
    SearchNetwork,
    copy_path_weights,
    count_flops,
    count_params,
    describe,
    search_params,
)
from nasviz.space.supernet import Supernet

# Tiny networks; one thread, because the test machine's cores are shared and OpenMP spinning costs 100x here.
torch.set_num_threads(1)
C, LAYERS, CLASSES = 4, 3, 10
DARTS_V2 = FIXTURES["DARTS_V2"]


def genotypes(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    return [sample_genotype(rng) for _ in range(n)]


def op_modules(net: nn.Module):
    """(cell index, edge key, op name, module) for every operation module of a cell network."""
    for index, cell in enumerate(net.cells):
        for key, ops in cell.edges.items():
            for name, module in ops.items():
                yield index, key, name, module


def chosen_ops(net: nn.Module, genotype) -> set[tuple[int, str, str]]:
    out = set()
    for index, cell in enumerate(net.cells):
        edges = genotype.reduce if cell.reduction else genotype.normal
        out |= {(index, edge_key(k // 2, inp), op) for k, (op, inp) in enumerate(edges)}
    return out


# ------------------------------------------------------------------------------------------------ supernet shapes


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("side", [28, 32, 40, 27])
def test_supernet_logits_shape(in_channels, side):
    torch.manual_seed(0)
    net = Supernet(in_channels, CLASSES, C, LAYERS)
    x = torch.randn(2, in_channels, side, side)
    for g in [DARTS_V2, *genotypes(2, seed=side)]:
        logits = net(x, g)
        assert logits.shape == (2, CLASSES)
        assert torch.isfinite(logits).all()
    net.eval()
    assert net(x[:1], DARTS_V2).shape == (1, CLASSES)


def test_supernet_structure():
    net = Supernet(3, CLASSES, C, 5)
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]
    for cell in net.cells:
        assert set(cell.edges) == {edge_key(j, i) for j in range(NODES) for i in range(j + 2)}
        for ops in cell.edges.values():
            assert tuple(ops) == CANDIDATE_OPS  # every candidate op, and never 'none'
    # the supernet's BatchNorms are not affine (DARTS search), except the stem's
    affine = [name for name, m in net.named_modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
    assert affine == ["stem.1"]


# ------------------------------------------------------------------------------------------------ weight sharing


def assert_same_outputs(supernet: Supernet, genotype, x: torch.Tensor) -> None:
    network = copy_path_weights(supernet, SearchNetwork(genotype, x.shape[1], CLASSES, C, LAYERS))
    for train in (True, False):
        supernet.train(train)
        network.train(train)
        with torch.no_grad():
            a, b = supernet(x, genotype), network(x)
        assert (a - b).abs().max().item() < 1e-5, ("train" if train else "eval", (a - b).abs().max().item())
    # BatchNorm running statistics travel too: one train-mode pass above moved both the same way
    shared = supernet.state_dict()
    for name, value in network.state_dict().items():
        assert torch.equal(value, shared[name]), name


@pytest.mark.parametrize("in_channels,side", [(1, 28), (3, 32)])
def test_path_equals_standalone_network(in_channels, side):
    torch.manual_seed(1)
    supernet = Supernet(in_channels, CLASSES, C, LAYERS)
    x = torch.randn(4, in_channels, side, side)
    for g in [DARTS_V2, FIXTURES["PDARTS"], *genotypes(3, seed=in_channels)]:
        assert_same_outputs(supernet, g, x)


def test_path_equals_standalone_network_after_sgd_steps():
    torch.manual_seed(2)
    supernet = Supernet(1, CLASSES, C, LAYERS)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1, momentum=0.9)
    paths = genotypes(3, seed=5)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, CLASSES, (8,))
    before = {name: p.detach().clone() for name, p in supernet.named_parameters()}
    supernet.train()
    for step in range(4):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(supernet(x, paths[step % 3]), y).backward()
        optimizer.step()
    assert any(not torch.equal(before[n], p) for n, p in supernet.named_parameters())  # it really trained
    for g in paths:
        assert_same_outputs(supernet, g, x[:4])


def test_standalone_network_holds_only_its_ops():
    g = DARTS_V2
    network = SearchNetwork(g, 1, CLASSES, C, LAYERS)
    held = {(i, key, name) for i, key, name, _ in op_modules(network)}
    assert held == chosen_ops(network, g)
    assert count_params(network) < count_params(Supernet(1, CLASSES, C, LAYERS))
    # a network deeper than the supernet has weights the supernet lacks: an error, not a silent partial copy
    with pytest.raises(KeyError):
        copy_path_weights(Supernet(1, CLASSES, C, LAYERS + 1), SearchNetwork(g, 1, CLASSES, C, LAYERS + 2))


# ------------------------------------------------------------------------------------------------ single path


@pytest.mark.parametrize(
    "genotype", [DARTS_V2, FIXTURES["PC_DARTS"], *genotypes(2, seed=9)], ids=["DARTS_V2", "PC_DARTS", "r0", "r1"]
)
def test_backward_touches_only_the_chosen_path(genotype):
    torch.manual_seed(3)
    net = Supernet(1, CLASSES, C, LAYERS)
    x, y = torch.randn(4, 1, 28, 28), torch.randint(0, CLASSES, (4,))
    F.cross_entropy(net(x, genotype), y).backward()
    chosen = chosen_ops(net, genotype)
    with_params = 0
    for index, key, name, module in op_modules(net):
        params = list(module.parameters())
        if (index, key, name) in chosen:
            with_params += bool(params)
            assert all(p.grad is not None for p in params), (index, key, name)
            assert any(p.grad.abs().sum() > 0 for p in params) or not params, (index, key, name)
        else:
            assert all(p.grad is None for p in params), (index, key, name)
    assert with_params > 0
    # shared parts (stem, preprocessing, classifier) always learn
    for name, p in net.named_parameters():
        if ".edges." not in name:
            assert p.grad is not None, name


@pytest.mark.parametrize("genotype", [DARTS_V2, *genotypes(3, seed=11)], ids=["DARTS_V2", "r0", "r1", "r2"])
def test_unchosen_ops_do_no_work(genotype):
    net = Supernet(3, CLASSES, C, LAYERS)
    ran: list[tuple[int, str, str]] = []
    for index, key, name, module in op_modules(net):
        module.register_forward_hook(lambda *_, tag=(index, key, name): ran.append(tag))
    net(torch.randn(2, 3, 32, 32), genotype)
    assert len(ran) == len(set(ran)) == 2 * NODES * LAYERS  # each chosen op exactly once per cell
    assert set(ran) == chosen_ops(net, genotype)


def test_path_costs_what_the_standalone_network_costs():
    x = torch.randn(1, 1, 28, 28)
    supernet = Supernet(1, CLASSES, C, LAYERS).eval()
    for g in [DARTS_V2, *genotypes(2, seed=4)]:
        network = SearchNetwork(g, 1, CLASSES, C, LAYERS).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as path:
            supernet(x, g)
        assert path.get_total_flops() == count_flops(network, (1, 28, 28)) > 0


# ------------------------------------------------------------------------------------------------ evaluation network


def test_darts_v2_cifar10_parameter_count():
    """The DARTS CIFAR-10 evaluation network of DARTS_V2: 3,349,342 parameters (DARTS prints 3.349342MB)."""
    info = describe(DARTS_V2, (3, 32, 32), 10, 36, 20)
    assert info["params"] == 3_349_342
    assert info["flops"] > 0
    with torch.device("meta"):
        net = EvalNetwork(DARTS_V2, 3, 10, 36, 20)
    assert count_params(net) == 3_349_342
    assert count_params(net, include_aux=True) > 3_349_342
    assert any(name.startswith("aux_head.") for name, _ in net.named_parameters())
    # CIFAR-100 only widens the classifier: 100 - 10 more outputs of the 576-wide final features
    assert describe(DARTS_V2, (3, 32, 32), 100, 36, 20)["params"] == 3_349_342 + 90 * (576 + 1)


def test_eval_network_uses_affine_batchnorm_and_no_pool_bn():
    net = EvalNetwork(DARTS_V2, 1, CLASSES, C, LAYERS)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(m.affine for m in norms)
    pools = [m for _, _, name, m in op_modules(net) if name.endswith("pool_3x3")]
    assert pools and all(len(p) == 1 for p in pools)  # pooling alone, as DARTS's evaluation network


@pytest.mark.parametrize("in_channels,side", [(1, 28), (3, 32), (1, 32), (3, 28)])
def test_auxiliary_head(in_channels, side):
    torch.manual_seed(4)
    net = EvalNetwork(DARTS_V2, in_channels, CLASSES, C, LAYERS)
    x = torch.randn(3, in_channels, side, side)
    net.train()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (3, CLASSES) and aux is not None and aux.shape == (3, CLASSES)
    (F.cross_entropy(logits, torch.zeros(3, dtype=torch.long)) + 0.4 * aux.sum()).backward()
    assert all(p.grad is not None for p in net.aux_head.parameters())
    net.eval()
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == (3, CLASSES) and aux is None
    assert net(x).shape == (3, CLASSES)
    plain = EvalNetwork(DARTS_V2, in_channels, CLASSES, C, LAYERS, auxiliary=False).train()
    assert plain.aux_head is None and plain.forward_with_aux(x)[1] is None
    assert count_params(plain, include_aux=True) == count_params(net)


def test_drop_path_only_in_training(monkeypatch):
    calls = []
    real = cells.drop_path

    def counting(x, p):
        calls.append(p)
        return real(x, p)

    monkeypatch.setattr(cells, "drop_path", counting)
    torch.manual_seed(5)
    net = EvalNetwork(DARTS_V2, 1, CLASSES, C, LAYERS)
    x = torch.randn(4, 1, 28, 28)
    # edges that drop-path applies to: all but identities (skip_connect at stride 1)
    expected = sum(
        op != "skip_connect" or (cell.reduction and inp < 2)
        for cell in net.cells
        for op, inp in (DARTS_V2.reduce if cell.reduction else DARTS_V2.normal)
    )
    assert 0 < expected < 2 * NODES * LAYERS

    net.eval()
    with torch.no_grad():
        clean = net(x)
        net.drop_prob = 0.5
        assert torch.equal(net(x), clean)
    assert calls == []

    net.train()
    net.drop_prob = 0.0
    with torch.no_grad():
        a, b = net(x), net(x)
    assert calls == [] and torch.equal(a, b)
    net.drop_prob = 0.5
    with torch.no_grad():
        torch.manual_seed(6)
        c = net(x)
    assert calls == [0.5] * expected
    assert not torch.allclose(a, c)


def test_drop_path_zeroes_whole_samples_and_keeps_the_mean():
    torch.manual_seed(7)
    x = torch.ones(4000, 2, 3, 3)
    out = cells.drop_path(x, 0.25)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}
    assert torch.all(per_sample.min(1).values == per_sample.max(1).values)  # a sample is kept or dropped whole
    assert abs(out.mean().item() - 1.0) < 0.05


# ------------------------------------------------------------------------------------------------ counts


def test_count_flops_grows_with_channels_and_restores_mode():
    small = EvalNetwork(DARTS_V2, 1, CLASSES, 4, LAYERS, auxiliary=False).train()
    wide = EvalNetwork(DARTS_V2, 1, CLASSES, 8, LAYERS, auxiliary=False)
    f_small, f_wide = count_flops(small, (1, 28, 28)), count_flops(wide, (1, 28, 28))
    assert 0 < f_small < f_wide
    assert small.training  # counting does not leave the network in eval mode
    assert count_flops(small, (1, 32, 32)) > f_small  # more pixels, more work
    # describe() counts on the meta device; it must agree with a real network
    assert describe(DARTS_V2, (1, 28, 28), CLASSES, 4, LAYERS) == {"params": count_params(small), "flops": f_small}


def test_search_params_matches_real_network():
    for g in [DARTS_V2, *genotypes(4, seed=12)]:
        for in_channels, classes in [(1, 10), (3, 100)]:
            expected = count_params(SearchNetwork(g, in_channels, classes, C, LAYERS))
            assert search_params(g, in_channels, classes, C, LAYERS) == expected > 0
    # different genotypes have different sizes (DARTS_V2's reduction cell is mostly pooling)
    assert search_params(DARTS_V2, 1, 10, C, LAYERS) < search_params(FIXTURES["PC_DARTS"], 1, 10, C, LAYERS)


def test_count_params_excludes_frozen_and_aux():
    net = EvalNetwork(DARTS_V2, 1, CLASSES, C, LAYERS)
    total = sum(p.numel() for p in net.parameters())
    aux = sum(p.numel() for p in net.aux_head.parameters())
    assert count_params(net) == total - aux
    assert count_params(net, include_aux=True) == total
    net.stem[0].weight.requires_grad_(False)
    assert count_params(net) == total - aux - net.stem[0].weight.numel()


@pytest.mark.parametrize("side", [(8, 8), (7, 7), (8, 7), (7, 6)])
def test_factorized_reduce_matches_the_padded_definition(side):
    """The even-size shortcut (no padding copy) gives exactly DARTS's pad-then-shift output and gradients."""
    from nasviz.space.ops import FactorizedReduce

    torch.manual_seed(0)
    reduce = FactorizedReduce(4, 6, affine=True).train()
    x = torch.randn(2, 4, *side, requires_grad=True)
    out = reduce(x)
    out.square().sum().backward()

    y = x.detach().clone().requires_grad_(True)
    relu = F.relu(y)
    shifted = F.pad(relu, (0, 1, 0, 1))[:, :, 1:, 1:]
    expected = reduce.bn(torch.cat([reduce.conv_1(relu), reduce.conv_2(shifted)], dim=1))
    expected.square().sum().backward()
    assert out.shape == (2, 6, (side[0] + 1) // 2, (side[1] + 1) // 2)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(x.grad, y.grad)
