"""The DARTS cell search space: operations, genotypes, parsing, validation, encoding and sampling.

A genotype is two cells (normal and reduction). Each cell has 4 intermediate nodes; node j (0-based) takes
exactly two distinct inputs from {0, ..., j+1} (0 and 1 are the cell inputs c_{k-2} and c_{k-1}), each
through one operation. Genotype text is exactly DARTS's and is parsed, never evaluated.
"""

from __future__ import annotations

import ast
import difflib
import math
import random
from dataclasses import dataclass

from nasviz.errors import NasvizError

OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The eight DARTS operations, in DARTS order."""

CANDIDATE_OPS: tuple[str, ...] = OPS[1:]
"""Operations a path or genotype may use (everything but `none`)."""

NODES = 4
"""Intermediate nodes per cell."""

CONCAT: tuple[int, ...] = (2, 3, 4, 5)
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

Edge = tuple[str, int]
"""One input edge of a node: (operation name, input index)."""


class GenotypeError(NasvizError, ValueError):
    """Genotype text or structure is not a valid DARTS genotype."""


def suggest(value: str, allowed: tuple[str, ...] | list[str]) -> str:
    """Return ' (did you mean X?)' for a close match of `value` in `allowed`, else ''."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validate_cell(name: str, edges: tuple[Edge, ...]) -> None:
    if len(edges) != 2 * NODES:
        raise GenotypeError(f"{name} cell has {len(edges)} (op, input) pairs; exactly {2 * NODES} are required")
    for k, edge in enumerate(edges):
        if not (isinstance(edge, tuple) and len(edge) == 2):
            raise GenotypeError(f"{name}[{k}] = {edge!r} is not an (op, input) pair")
        op, inp = edge
        if op == "none":
            raise GenotypeError(f"{name}[{k}] uses 'none'; allowed operations: {', '.join(CANDIDATE_OPS)}")
        if op not in CANDIDATE_OPS:
            raise GenotypeError(
                f"{name}[{k}] has unknown operation {op!r}{suggest(op, CANDIDATE_OPS)}; "
                f"allowed: {', '.join(CANDIDATE_OPS)}"
            )
        node = k // 2
        if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp <= node + 1:
            raise GenotypeError(f"{name}[{k}] input {inp!r} is out of range; node {node} takes inputs 0..{node + 1}")
    for node in range(NODES):
        a, b = edges[2 * node][1], edges[2 * node + 1][1]
        if a == b:
            raise GenotypeError(f"{name} node {node} takes input {a} twice; its two inputs must be distinct")


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype: 8 (op, input) pairs per cell, two per intermediate node, in node order."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    normal_concat: tuple[int, ...] = CONCAT
    reduce_concat: tuple[int, ...] = CONCAT

    def __post_init__(self) -> None:
        for field in ("normal", "reduce"):
            value = getattr(self, field)
            if not isinstance(value, (list, tuple)):
                raise GenotypeError(f"{field} must be a list of (op, input) pairs, got {value!r}")
            object.__setattr__(
                self, field, tuple(tuple(e) if isinstance(e, (list, tuple)) else e for e in value)
            )
            _validate_cell(field, getattr(self, field))
        for field in ("normal_concat", "reduce_concat"):
            value = tuple(getattr(self, field))
            if value != CONCAT:
                raise GenotypeError(f"{field} = {list(value)} is not supported; it must be [2, 3, 4, 5]")
            object.__setattr__(self, field, value)

    # --- text -----------------------------------------------------------------------------------------
    def __str__(self) -> str:
        def cell(edges: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in edges) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    @classmethod
    def parse(cls, text: str) -> Genotype:
        """Parse DARTS genotype text (or a fixture name such as 'DARTS_V2') without evaluating it."""
        if not isinstance(text, str):
            raise GenotypeError(f"genotype must be text, got {type(text).__name__}")
        stripped = text.strip()
        if stripped in FIXTURES:
            return FIXTURES[stripped]
        try:
            tree = ast.parse(stripped, mode="eval").body
        except SyntaxError as exc:
            raise GenotypeError(
                f"cannot parse genotype text {_short(stripped)}: {exc.msg}; expected "
                f"Genotype(normal=[...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5]) "
                f"or a fixture name ({', '.join(FIXTURES)})"
            ) from None
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
            raise GenotypeError(
                f"genotype text {_short(stripped)} is not a Genotype(...) call or a fixture name "
                f"({', '.join(FIXTURES)})"
            )
        if tree.args:
            raise GenotypeError(
                "Genotype(...) takes keyword arguments only: normal, normal_concat, reduce, reduce_concat"
            )
        fields = {}
        for kw in tree.keywords:
            if kw.arg not in ("normal", "normal_concat", "reduce", "reduce_concat"):
                raise GenotypeError(
                    f"unknown Genotype field {kw.arg!r}; allowed: normal, normal_concat, reduce, reduce_concat"
                )
            fields[kw.arg] = _literal(kw.value, kw.arg)
        for required in ("normal", "reduce"):
            if required not in fields:
                raise GenotypeError(f"genotype text lacks the {required!r} field")
        return cls(**fields)

    # --- encoding for the GA --------------------------------------------------------------------------
    def nodes(self) -> tuple[tuple[Edge, Edge], ...]:
        """The 8 nodes (normal cell first) in canonical form: each node's two edges sorted by input."""
        out = []
        for edges in (self.normal, self.reduce):
            for j in range(NODES):
                a, b = edges[2 * j], edges[2 * j + 1]
                out.append((a, b) if a[1] < b[1] else (b, a))
        return tuple(out)

    def key(self) -> str:
        """Canonical identity: equal for genotypes that differ only in the order of a node's two edges."""
        return str(Genotype.from_nodes(self.nodes()))

    def encode(self) -> tuple[int, ...]:
        """Canonical integer vector: per node (input_a, op_a, input_b, op_b), ops indexed in `OPS`."""
        return tuple(v for a, b in self.nodes() for v in (a[1], OPS.index(a[0]), b[1], OPS.index(b[0])))

    @classmethod
    def decode(cls, vector: tuple[int, ...] | list[int]) -> Genotype:
        """Inverse of `encode`."""
        if len(vector) != 4 * 2 * NODES:
            raise GenotypeError(f"an encoded genotype has {4 * 2 * NODES} integers, got {len(vector)}")
        nodes = []
        for n in range(2 * NODES):
            ia, oa, ib, ob = vector[4 * n : 4 * n + 4]
            for o in (oa, ob):
                if not 0 <= o < len(OPS):
                    raise GenotypeError(f"operation index {o} is out of range 0..{len(OPS) - 1}")
            nodes.append(((OPS[oa], ia), (OPS[ob], ib)))
        return cls.from_nodes(nodes)

    @classmethod
    def from_nodes(cls, nodes: tuple | list) -> Genotype:
        """Build a genotype from 8 nodes (4 normal, then 4 reduce), each a pair of (op, input) edges."""
        flat = [edge for node in nodes for edge in node]
        return cls(normal=tuple(flat[: 2 * NODES]), reduce=tuple(flat[2 * NODES :]))

    def cell(self, cell_type: str) -> tuple[Edge, ...]:
        return self.normal if cell_type == "normal" else self.reduce


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _literal(node: ast.AST, field: str) -> object:
    """Turn an AST of lists/tuples of strings and ints (or range(a, b)) into Python values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return tuple(_literal(e, field) for e in node.elts)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and not node.keywords
        and 1 <= len(node.args) <= 2
    ):
        bounds = [_literal(a, field) for a in node.args]
        # a length cap: untrusted text like range(0, 10000000000) must not be materialized
        if all(isinstance(b, int) for b in bounds) and len(range(*bounds)) <= 64:
            return tuple(range(*bounds))
    raise GenotypeError(
        f"{field} contains {_short(ast.unparse(node))}, which is not allowed; genotype text may hold only "
        "lists/tuples of quoted op names and integers, and range(a, b)"
    )


def sample_genotype(rng: random.Random) -> Genotype:
    """Draw a genotype uniformly at random (inputs: a uniform pair of distinct inputs; ops uniform)."""
    nodes = []
    for _cell in CELL_TYPES:
        for j in range(NODES):
            a, b = sorted(rng.sample(range(j + 2), 2))
            nodes.append(((rng.choice(CANDIDATE_OPS), a), (rng.choice(CANDIDATE_OPS), b)))
    return Genotype.from_nodes(nodes)


def cell_space_size() -> int:
    """Number of distinct cells: per node, an unordered pair of distinct inputs, each with one of 7 ops."""
    return math.prod(math.comb(j + 2, 2) * len(CANDIDATE_OPS) ** 2 for j in range(NODES))


def space_size() -> int:
    """Number of distinct genotypes (normal x reduction cell), counted canonically."""
    return cell_space_size() ** 2


def _fixture(normal: list[Edge], reduce: list[Edge]) -> Genotype:
    return Genotype(normal=tuple(normal), reduce=tuple(reduce))


# Published genotypes (quark0/darts cnn/genotypes.py and its successors), shipped as facts.
FIXTURES: dict[str, Genotype] = {
    "DARTS_V1": _fixture(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    ),
    "DARTS_V2": _fixture(
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    ),
    "PC_DARTS": _fixture(
        [("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
         ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
        [("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
         ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
    ),
    "PDARTS": _fixture(
        [("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)],
        [("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
         ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)],
    ),
}
"""Published DARTS-family genotypes by name."""
