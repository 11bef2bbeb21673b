"""Tests for nasviz.space.genotypes: genotype text (parse/format/validate), encoding, canonical keys, sampling, size."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasviz.errors import NasvizError
from nasviz.space.genotypes import (
    CANDIDATE_OPS,
    CONCAT,
    FIXTURES,
    NODES,
    OPS,
    Genotype,
    GenotypeError,
    cell_space_size,
    sample_genotype,
    space_size,
)

DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
    "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)
"""DARTS_V2 exactly as quark0/darts prints it (str() of its namedtuple)."""

V2_NORMAL = list(FIXTURES["DARTS_V2"].normal)
V2_REDUCE = list(FIXTURES["DARTS_V2"].reduce)


def text(normal=None, reduce=None, normal_concat="[2, 3, 4, 5]", reduce_concat="[2, 3, 4, 5]") -> str:
    """Genotype text with DARTS_V2's cells unless replaced (each cell given as a Python list or raw text)."""

    def cell(value):
        return value if isinstance(value, str) else "[" + ", ".join(f"({op!r}, {i!r})" for op, i in value) + "]"

    return (
        f"Genotype(normal={cell(V2_NORMAL if normal is None else normal)}, normal_concat={normal_concat}, "
        f"reduce={cell(V2_REDUCE if reduce is None else reduce)}, reduce_concat={reduce_concat})"
    )


# ------------------------------------------------------------------------------------------------ text round trip


def test_darts_v2_fixture_is_the_published_genotype():
    g = FIXTURES["DARTS_V2"]
    assert str(g) == DARTS_V2_TEXT
    assert Genotype.parse(DARTS_V2_TEXT) == g
    assert g.normal[7] == ("dil_conv_3x3", 2) and g.reduce[0] == ("max_pool_3x3", 0)
    assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_text_round_trip(name):
    g = FIXTURES[name]
    assert Genotype.parse(str(g)) == g
    assert str(Genotype.parse(str(g))) == str(g)
    assert Genotype.parse(name) == g
    assert Genotype.parse(f"  {name}\n") == g


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_random_genotype_text_round_trip(seed):
    g = sample_genotype(random.Random(seed))
    assert Genotype.parse(str(g)) == g
    assert Genotype.parse(str(g)).key() == g.key()


def test_range_concat_accepted():
    g = Genotype.parse(text(normal_concat="range(2, 6)", reduce_concat="range(2, 6)"))
    assert g == FIXTURES["DARTS_V2"]
    assert g.normal_concat == g.reduce_concat == CONCAT
    # DARTS writes cells as lists, tuples are just as literal; whitespace and newlines are fine
    tupled = text(normal="(" + ", ".join(f"({op!r}, {i})" for op, i in V2_NORMAL) + ")")
    assert Genotype.parse(tupled.replace(", ", ",\n   ")) == FIXTURES["DARTS_V2"]


def test_concat_may_be_omitted():
    g = Genotype.parse(f"Genotype(normal={V2_NORMAL!r}, reduce={V2_REDUCE!r})")
    assert g == FIXTURES["DARTS_V2"]


def test_pairs_given_as_lists_are_normalized():
    g = Genotype(normal=[list(e) for e in V2_NORMAL], reduce=V2_REDUCE)
    assert g == FIXTURES["DARTS_V2"]
    assert all(isinstance(e, tuple) for e in g.normal)
    hash(g)  # frozen and hashable


# ------------------------------------------------------------------------------------------------ validation


def bad(text_or_thunk, *fragments: str) -> str:
    """Assert parsing (or calling) raises GenotypeError whose one-line message contains every fragment."""
    with pytest.raises(GenotypeError) as info:
        if callable(text_or_thunk):
            text_or_thunk()
        else:
            Genotype.parse(text_or_thunk)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert isinstance(info.value, NasvizError) and isinstance(info.value, ValueError)
    return message


def test_wrong_pair_count():
    bad(text(normal=V2_NORMAL[:7]), "normal", "7", "8")
    bad(text(reduce=V2_REDUCE + [("max_pool_3x3", 0)]), "reduce", "9", "8")
    bad(text(normal=[]), "normal", "0")


def test_unknown_op_with_suggestion():
    cell = list(V2_NORMAL)
    cell[3] = ("sep_conv_3x33", 1)
    message = bad(text(normal=cell), "normal[3]", "'sep_conv_3x33'", "did you mean 'sep_conv_3x3'")
    assert "allowed" in message
    cell[3] = ("conv_7x1_1x7", 1)  # a NASNet op, not in the DARTS space
    bad(text(reduce=cell), "reduce[3]", "'conv_7x1_1x7'")


def test_none_op_rejected():
    cell = list(V2_REDUCE)
    cell[5] = ("none", 2)
    message = bad(text(reduce=cell), "reduce[5]", "'none'")
    assert "none" not in message.split("allowed operations:")[1]


@pytest.mark.parametrize("position,inp", [(0, 2), (3, 3), (5, 4), (7, 6), (1, -1)])
def test_input_out_of_range(position, inp):
    cell = list(V2_NORMAL)
    cell[position] = ("sep_conv_3x3", inp)
    if inp < 0:  # a negative number is not a literal int in the AST; it is refused as text, never evaluated
        bad(text(normal=cell), "normal", "-1")
        bad(lambda: Genotype(normal=cell, reduce=V2_REDUCE), f"normal[{position}]", "-1", "out of range")
    else:
        node = position // 2
        bad(text(normal=cell), f"normal[{position}]", f"input {inp}", f"0..{node + 1}")


def test_non_integer_input_rejected():
    cell = list(V2_NORMAL)
    cell[0] = ("sep_conv_3x3", "0")
    bad(text(normal=cell), "normal[0]", "'0'")
    bad(lambda: Genotype(normal=[("sep_conv_3x3", True)] + V2_NORMAL[1:], reduce=V2_REDUCE), "normal[0]", "True")
    bad(lambda: Genotype(normal=[("sep_conv_3x3", 0.0)] + V2_NORMAL[1:], reduce=V2_REDUCE), "normal[0]")


def test_same_input_twice():
    cell = list(V2_REDUCE)
    cell[4], cell[5] = ("max_pool_3x3", 2), ("skip_connect", 2)
    bad(text(reduce=cell), "reduce node 2", "input 2 twice")


def test_not_a_pair():
    bad(text(normal="[('sep_conv_3x3', 0, 1)" + ", ('sep_conv_3x3', 1)" * 7 + "]"), "normal[0]", "pair")
    bad(text(normal="['sep_conv_3x3'" + ", ('sep_conv_3x3', 1)" * 7 + "]"), "normal[0]", "pair")


@pytest.mark.parametrize("concat", ["[2, 3, 4]", "[1, 2, 3, 4, 5]", "range(2, 5)", "[5, 4, 3, 2]"])
def test_bad_concat(concat):
    bad(text(normal_concat=concat), "normal_concat")
    bad(text(reduce_concat=concat), "reduce_concat")


def test_huge_range_is_refused_without_materializing_it():
    # tuple(range(0, 10**13)) would take hours and all memory; the text comes from users and files
    bad(text(normal_concat="range(0, 10000000000000)"), "normal_concat", "range(0, 10000000000000)")
    bad(text(reduce="range(0, 10000000000000)"), "reduce")
    bad(text(normal_concat="range(2, 6, 1)"), "normal_concat")


def test_positional_args():
    bad(f"Genotype({V2_NORMAL!r}, [2, 3, 4, 5], {V2_REDUCE!r}, [2, 3, 4, 5])", "keyword")


def test_unknown_field():
    bad(text().replace("reduce_concat=", "reduction_concat="), "'reduction_concat'", "allowed")
    bad(text()[:-1] + ", **{'normal': []})", "unknown Genotype field")


def test_missing_field():
    bad(f"Genotype(normal={V2_NORMAL!r})", "'reduce'")


def test_syntax_error():
    bad(text()[:-1], "cannot parse")  # missing closing parenthesis
    bad("Genotype(normal=[('sep_conv_3x3', 0),", "cannot parse")
    bad("", "cannot parse")


@pytest.mark.parametrize(
    "source",
    [
        "DARTS_V3",
        "[('sep_conv_3x3', 0)]",
        "dict(normal=[], reduce=[])",
        "nasviz.space.Genotype(normal=[], reduce=[])",
        "Genotype(normal=[], reduce=[]).normal",
        "Genotype",
        "42",
    ],
)
def test_not_a_genotype_call(source):
    bad(source, "not a Genotype(...) call")


def test_parse_needs_text():
    bad(lambda: Genotype.parse(FIXTURES["DARTS_V2"]), "must be text", "Genotype")
    bad(lambda: Genotype.parse(None), "NoneType")


def test_cells_must_be_sequences():
    bad(lambda: Genotype(normal="sep_conv_3x3", reduce=V2_REDUCE), "normal must be a list")
    bad(lambda: Genotype(normal=V2_NORMAL, reduce=None), "reduce must be a list")


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('os').system('touch {marker}')",
        "Genotype(normal=__import__('os').system('touch {marker}'), reduce=[])",
        "Genotype(normal=[('sep_conv_3x3', __import__('os').system('touch {marker}'))], reduce=[])",
        "Genotype(normal=[open('{marker}', 'w')], reduce=[])",
        "Genotype(normal=range(__import__('os').system('touch {marker}')), reduce=[])",
        "Genotype(normal=[x for x in [open('{marker}', 'w')]], reduce=[])",
        "Genotype(normal=(lambda: open('{marker}', 'w'))(), reduce=[])",
        "Genotype(normal=[f'{{open(\"{marker}\", \"w\")}}'], reduce=[])",
    ],
)
def test_code_in_genotype_text_is_never_executed(tmp_path, payload):
    marker = tmp_path / "pwned"
    source = payload.format(marker=marker)
    with pytest.raises(GenotypeError) as info:
        Genotype.parse(source)
    assert not marker.exists()
    assert "\n" not in str(info.value)
    if source.startswith("Genotype("):
        assert "normal" in str(info.value)  # names the field holding the code


# ------------------------------------------------------------------------------------------------ encode / key


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_encode_decode(name):
    g = FIXTURES[name]
    vector = g.encode()
    assert len(vector) == 4 * 2 * NODES and all(isinstance(v, int) for v in vector)
    assert Genotype.decode(vector).key() == g.key()
    assert Genotype.decode(list(vector)).encode() == vector


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.lists(st.booleans(), min_size=8, max_size=8))
def test_encode_decode_and_key_invariance(seed, swaps):
    g = sample_genotype(random.Random(seed))
    assert Genotype.decode(g.encode()).key() == g.key()
    assert Genotype.decode(g.encode()).encode() == g.encode()
    # swap the two edges of some nodes: same architecture, same key and encoding, different text
    edges = g.normal + g.reduce
    pairs = [(edges[2 * n], edges[2 * n + 1]) for n in range(2 * NODES)]
    nodes = [(b, a) if swap else (a, b) for (a, b), swap in zip(pairs, swaps)]
    swapped = Genotype.from_nodes(nodes)
    assert swapped.key() == g.key()
    assert swapped.encode() == g.encode()
    assert (str(swapped) == str(g)) == (not any(swaps))
    # the key is itself a canonical genotype text
    assert Genotype.parse(g.key()).key() == g.key()


def test_key_distinguishes_different_genotypes():
    g = FIXTURES["DARTS_V2"]
    changed = list(g.normal)
    changed[7] = ("dil_conv_5x5", 2)
    other = Genotype(normal=changed, reduce=g.reduce)
    assert other.key() != g.key() and other.encode() != g.encode()
    # the same normal cell used as the reduction cell is a different genotype
    assert Genotype(normal=g.reduce, reduce=g.normal).key() != g.key()
    keys = {FIXTURES[name].key() for name in FIXTURES}
    assert len(keys) == len(FIXTURES)


def test_encode_uses_ops_by_name():
    g = FIXTURES["DARTS_V2"]
    vector = g.encode()
    first_node = g.nodes()[0]
    assert vector[:4] == (first_node[0][1], OPS.index(first_node[0][0]), first_node[1][1], OPS.index(first_node[1][0]))
    assert OPS.index("sep_conv_3x3") == 4 and OPS[0] == "none"


def test_decode_rejects_bad_vectors():
    vector = list(FIXTURES["DARTS_V2"].encode())
    bad(lambda: Genotype.decode(vector[:-1]), "32", "31")
    for index, value, fragment in [(1, 8, "operation index 8"), (1, -1, "operation index -1"), (1, 0, "'none'"),
                                   (0, 5, "out of range"), (2, vector[0], "twice")]:
        broken = list(vector)
        broken[index] = value
        bad(lambda b=broken: Genotype.decode(b), fragment)


# ------------------------------------------------------------------------------------------------ size


def test_space_size_formula():
    expected_cell = 1
    for j in range(NODES):
        inputs = j + 2
        expected_cell *= (inputs * (inputs - 1) // 2) * 7 * 7
    assert cell_space_size() == expected_cell == 49 * 147 * 294 * 490 == 1_037_664_180
    assert space_size() == expected_cell**2
    assert len(CANDIDATE_OPS) == 7 and "none" not in CANDIDATE_OPS


@pytest.mark.parametrize("node", range(NODES))
def test_node_choices_brute_force(node):
    """Enumerate every ordered (op, input) pair for one node; the distinct valid canonical genotypes it gives
    are exactly that node's factor in `cell_space_size` (nodes choose independently)."""
    base = FIXTURES["DARTS_V2"]
    keys = set()
    for (op_a, in_a), (op_b, in_b) in itertools.product(itertools.product(OPS, range(-1, node + 3)), repeat=2):
        normal = list(base.normal)
        normal[2 * node], normal[2 * node + 1] = (op_a, in_a), (op_b, in_b)
        try:
            keys.add(Genotype(normal=normal, reduce=base.reduce).key())
        except GenotypeError:
            continue
    assert len(keys) == math.comb(node + 2, 2) * len(CANDIDATE_OPS) ** 2
    factors = [math.comb(j + 2, 2) * len(CANDIDATE_OPS) ** 2 for j in range(NODES)]
    assert cell_space_size() == math.prod(factors)


# ------------------------------------------------------------------------------------------------ sampling


def test_sampling_is_seeded():
    a = [sample_genotype(random.Random(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng1, rng2 = random.Random(123), random.Random(123)
    assert [sample_genotype(rng1) for _ in range(20)] == [sample_genotype(rng2) for _ in range(20)]
    assert len({sample_genotype(random.Random(s)).key() for s in range(50)}) == 50


def test_sampling_covers_space_without_none():
    rng = random.Random(0)
    ops = {cell: Counter() for cell in ("normal", "reduce")}
    inputs = Counter()
    pairs = Counter()
    draws = 2000
    for _ in range(draws):
        g = sample_genotype(rng)
        for cell in ("normal", "reduce"):
            edges = g.cell(cell)
            for k, (op, inp) in enumerate(edges):
                assert op != "none"
                ops[cell][op] += 1
                inputs[(cell, k // 2, inp)] += 1
            for j in range(NODES):
                pairs[(cell, j, frozenset((edges[2 * j][1], edges[2 * j + 1][1])))] += 1
    for cell in ("normal", "reduce"):
        assert set(ops[cell]) == set(CANDIDATE_OPS)
        expected = draws * 2 * NODES / len(CANDIDATE_OPS)
        assert all(abs(n - expected) < 0.15 * expected for n in ops[cell].values()), ops[cell]
        for j in range(NODES):
            assert {i for c, n, i in inputs if c == cell and n == j} == set(range(j + 2))
            seen_pairs = {p for c, n, p in pairs if c == cell and n == j}
            assert len(seen_pairs) == math.comb(j + 2, 2)
    # input pairs are uniform: node 3 has C(5, 2) = 10 pairs, each about a tenth of the draws
    node3 = [n for (c, j, _), n in pairs.items() if c == "normal" and j == 3]
    assert all(abs(n - draws / 10) < 0.3 * draws / 10 for n in node3), node3
