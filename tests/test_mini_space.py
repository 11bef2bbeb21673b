"""The `mini` search space (2 nodes, 4 ops, reduction = normal cell) and search spaces as values."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
import torch

from nasviz.search import ga
from nasviz.search.sampling import region_sampler, uniform_sampler
from nasviz.space.genotypes import DARTS, FIXTURES, MINI, SPACES, Genotype, GenotypeError, get_space
from nasviz.space.network import SearchNetwork, copy_path_weights
from nasviz.space.supernet import Supernet

torch.set_num_threads(1)


def mini_text(cell: list[tuple[str, int]], concat: str = "[2, 3]") -> str:
    pairs = "[" + ", ".join(f"({op!r}, {i})" for op, i in cell) + "]"
    return f"Genotype(normal={pairs}, normal_concat={concat}, reduce={pairs}, reduce_concat={concat})"


CELL = [("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_3x3", 0), ("skip_connect", 2)]


def test_spaces_by_name():
    assert get_space("darts") is DARTS and get_space("mini") is MINI and get_space(MINI) is MINI
    assert set(SPACES) == {"darts", "mini"}
    with pytest.raises(GenotypeError, match=r"unknown search space 'mnii' \(did you mean 'mini'\?\); allowed: darts"):
        get_space("mnii")


def test_mini_counts():
    """16 first nodes x 48 second nodes = 768 genotypes; 648 networks once interchangeable nodes are merged:
    when both nodes read (0, 1) the 16 x 16 ordered pairs become 16 * 17 / 2 = 136 unordered ones."""
    assert MINI.cell_size() == 16 * 48 == MINI.size() == 768
    everything = MINI.enumerate()
    assert len(everything) == 768 == len({g.key() for g in everything})
    assert all(MINI.check(g) is g for g in everything)
    assert MINI.distinct() == 136 + 2 * 16 * 16 == 648
    with pytest.raises(GenotypeError, match="only"):
        DARTS.enumerate()


def test_mini_text_round_trips_with_its_concat():
    g = MINI.parse(mini_text(CELL))
    assert g.normal_concat == g.reduce_concat == (2, 3) and g.normal == g.reduce
    assert MINI.parse(str(g)) == g == Genotype.parse(str(g))
    assert Genotype.parse(mini_text(CELL, "range(2, 4)")) == g
    assert Genotype.parse(mini_text(CELL).replace(", normal_concat=[2, 3]", "").replace(", reduce_concat=[2, 3]",
                                                                                      "")) == g


@pytest.mark.parametrize("text,fragments", [
    (mini_text(CELL, "[2, 3, 4, 5]"), ["normal_concat = [2, 3, 4, 5] is not supported", "[2, 3]"]),
    (mini_text([("sep_conv_5x5", 0)] + CELL[1:]), ["normal[0] uses 'sep_conv_5x5'", "mini space", "allowed:"]),
    (mini_text(CELL).replace("('skip_connect', 2)]", "('skip_connect', 1)]", 1), ["ties the reduction cell"]),
    (str(FIXTURES["DARTS_V2"]), ["4 nodes", "the mini space has 2"]),
])
def test_mini_membership_errors_are_one_line(text, fragments):
    with pytest.raises(GenotypeError) as info:
        MINI.parse(text)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_darts_rejects_a_mini_genotype():
    with pytest.raises(GenotypeError, match="2 nodes"):
        DARTS.parse(mini_text(CELL))


def swap_nodes(g: Genotype) -> Genotype:
    """The same network with the two nodes of each cell numbered the other way (both must read only 0 and 1)."""
    a, b = g.normal[:2], g.normal[2:]
    return Genotype(normal=b + a, reduce=b + a)


def test_interchangeable_nodes_share_one_key():
    g = MINI.parse(mini_text([("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_3x3", 0), ("skip_connect", 1)]))
    h = swap_nodes(g)
    assert g != h and g.key() != h.key()  # different genotypes ...
    assert MINI.key(g) == MINI.key(h)  # ... one network
    assert MINI.canonical(g) == MINI.canonical(h) and MINI.check(MINI.canonical(g))
    # a second node that reads the first is not interchangeable with it
    chained = MINI.parse(mini_text(CELL))
    assert MINI.key(chained) == str(MINI.canonical(chained)) == str(Genotype.from_nodes(chained.nodes()))


def test_interchangeable_nodes_build_the_same_function():
    """Swapping the nodes only permutes the cell's output channels: with the weights permuted to match, the two
    networks compute the same logits, so one table entry stands for both."""
    g = MINI.parse(mini_text([("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_3x3", 0), ("skip_connect", 1)]))
    h = swap_nodes(g)
    torch.manual_seed(0)
    supernet = Supernet(1, 10, 4, 1, space=MINI).eval()  # one cell: the classifier reads its concat directly
    x = torch.randn(2, 1, 14, 14)
    out_g = supernet(x, g)
    # nodes swapped => channels [n0, n1] become [n1, n0]: permute the classifier's input columns
    c = supernet.classifier.in_features // 2
    weight = supernet.classifier.weight.data.clone()
    supernet.classifier.weight.data = torch.cat([weight[:, c:], weight[:, :c]], dim=1)
    # each edge module of g's node 0 lives at node 1 in h: copy the weights across
    for (op, inp), (node_g, node_h) in zip(g.normal, [(0, 1), (0, 1), (1, 0), (1, 0)]):
        src = supernet.cells[0].edges[f"{node_g}_{inp}"][op]
        dst = supernet.cells[0].edges[f"{node_h}_{inp}"][op]
        if src is not dst:
            dst.load_state_dict(src.state_dict())
    assert torch.allclose(out_g, supernet(x, h), atol=1e-6)


def test_canonical_form_is_stable():
    for g in MINI.enumerate()[::7]:
        c = MINI.canonical(g)
        assert MINI.canonical(c) == c and MINI.key(c) == MINI.key(g)


@pytest.mark.parametrize("seed", range(5))
def test_sampling_stays_in_the_space(seed):
    rng = random.Random(seed)
    draws = [MINI.sample(rng) for _ in range(400)]
    assert all(MINI.check(g) is g for g in draws)
    ops = Counter(op for g in draws for op, _ in g.normal)
    assert set(ops) == set(MINI.ops)
    assert all(abs(n / (4 * 400) - 0.25) < 0.05 for n in ops.values())


def test_darts_sampling_is_unchanged():
    """The DARTS space draws exactly what `sample_genotype` always drew (runs and results stay as they were)."""
    from nasviz.space.genotypes import sample_genotype

    a, b = random.Random(3), random.Random(3)
    assert [DARTS.sample(a) for _ in range(20)] == [sample_genotype(b) for _ in range(20)]


def test_ga_operators_keep_mini_genotypes_in_the_space():
    rng = random.Random(0)
    parents = ga.random_population(8, rng, set(), MINI)
    assert len({MINI.key(p) for p in parents}) == 8
    fitness = [rng.random() for _ in parents]
    seen = {MINI.key(p) for p in parents}
    for _ in range(5):
        children = ga.make_offspring(parents, fitness, rng, n=8, p_c=0.9, p_m=0.5, seen=seen, space=MINI)
        for child in children:
            assert MINI.check(child) is child
            assert MINI.key(child) not in seen
        seen |= {MINI.key(c) for c in children}
        parents = children
    region = ga.region_frequencies(parents, MINI)
    assert len(region.pairs) == MINI.nodes  # tied: the GA varies the normal cell alone
    for strategy in ("population", "region", "uniform"):
        sampler = region_sampler(strategy, parents, 10, rng, MINI)
        assert all(MINI.check(sampler()) for _ in range(10))
    assert MINI.check(uniform_sampler(rng, MINI)())


def test_random_population_can_take_the_whole_mini_space():
    population = ga.random_population(648, random.Random(1), set(), MINI)
    assert len({MINI.key(g) for g in population}) == 648
    with pytest.raises(RuntimeError, match="no unseen genotype"):
        ga.random_population(1, random.Random(1), {MINI.key(g) for g in population}, MINI)


@pytest.mark.parametrize("layers", [1, 3, 5])
def test_mini_supernet_path_equals_standalone_network(layers):
    torch.manual_seed(layers)
    supernet = Supernet(1, 10, 4, layers, space=MINI).eval()
    assert set(supernet.cells[0].edges) == {f"{j}_{i}" for j in range(2) for i in range(j + 2)}
    assert all(tuple(ops) == MINI.ops for ops in supernet.cells[0].edges.values())
    x = torch.randn(3, 1, 14, 14)
    for g in itertools.islice(MINI.enumerate(), 0, 768, 97):
        net = copy_path_weights(supernet, SearchNetwork(g, 1, 10, 4, layers)).eval()
        assert torch.equal(supernet(x, g), net(x))
