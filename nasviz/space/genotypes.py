"""Cell search spaces: operations, genotypes, parsing, validation, encoding and sampling.

A genotype is two cells (normal and reduction). Each cell has n intermediate nodes; node j (0-based) takes
exactly two distinct inputs from {0, ..., j+1} (0 and 1 are the cell inputs c_{k-2} and c_{k-1}), each
through one operation, and the cell outputs the concatenation of nodes 2..n+1. Genotype text is exactly
DARTS's and is parsed, never evaluated.

A `SearchSpace` says which genotypes a search may use: how many nodes, which operations, and whether the
reduction cell is tied to the normal cell. Two are built in (`SPACES`): `darts` (4 nodes, 7 operations,
two free cells: the DARTS space and the default) and `mini` (2 nodes, 4 operations, reduction = normal:
768 genotypes, small enough to train every one of them, see `nasviz.table`).
"""

from __future__ import annotations

import ast
import functools
import itertools
import math
import random
from dataclasses import dataclass

from nasviz.errors import NasvizError, suggest

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
"""Intermediate nodes per cell of the DARTS space."""

CONCAT: tuple[int, ...] = (2, 3, 4, 5)
NODE_COUNTS: tuple[int, ...] = (2, 4)
"""Intermediate nodes a cell of a built-in space may have (mini: 2, darts: 4)."""
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")

Edge = tuple[str, int]
"""One input edge of a node: (operation name, input index)."""


class GenotypeError(NasvizError, ValueError):
    """Genotype text or structure is not a valid DARTS genotype."""


def concat_for(nodes: int) -> tuple[int, ...]:
    """The output nodes of a cell with `nodes` intermediate nodes: all of them, 2..nodes+1."""
    return tuple(range(2, nodes + 2))


def _validate_cell(name: str, edges: tuple[Edge, ...]) -> None:
    if len(edges) not in tuple(2 * n for n in NODE_COUNTS):
        raise GenotypeError(
            f"{name} cell has {len(edges)} (op, input) pairs; exactly {2 * NODES} are required "
            f"({2 * NODE_COUNTS[0]} in the mini space)"
        )
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
    for node in range(len(edges) // 2):
        a, b = edges[2 * node][1], edges[2 * node + 1][1]
        if a == b:
            raise GenotypeError(f"{name} node {node} takes input {a} twice; its two inputs must be distinct")


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype: two (op, input) pairs per intermediate node (8 per cell in the DARTS space), in node
    order. The concat fields may be omitted: they are always all the cell's nodes."""

    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]
    normal_concat: tuple[int, ...] | None = None
    reduce_concat: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for field in ("normal", "reduce"):
            value = getattr(self, field)
            if not isinstance(value, (list, tuple)):
                raise GenotypeError(f"{field} must be a list of (op, input) pairs, got {value!r}")
            object.__setattr__(
                self, field, tuple(tuple(e) if isinstance(e, (list, tuple)) else e for e in value)
            )
            _validate_cell(field, getattr(self, field))
        if len(self.normal) != len(self.reduce):
            raise GenotypeError(
                f"the normal cell has {len(self.normal) // 2} nodes but the reduction cell {len(self.reduce) // 2}; "
                "both cells must have the same number of nodes"
            )
        expected = concat_for(self.n_nodes)
        for field in ("normal_concat", "reduce_concat"):
            value = expected if getattr(self, field) is None else tuple(getattr(self, field))
            if value != expected:
                raise GenotypeError(f"{field} = {list(value)} is not supported; it must be {list(expected)}")
            object.__setattr__(self, field, value)

    @property
    def n_nodes(self) -> int:
        """Intermediate nodes per cell."""
        return len(self.normal) // 2

    # --- text -----------------------------------------------------------------------------------------
    def __str__(self) -> str:
        def cell(edges: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in edges) + "]"

        return (
            f"Genotype(normal={cell(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={cell(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    @classmethod
    def parse(cls, text: str, space: SearchSpace | None = None) -> Genotype:
        """Parse DARTS genotype text (or a fixture name such as 'DARTS_V2') without evaluating it; with `space`,
        also check that the genotype belongs to that space."""
        genotype = cls._parse(text)
        return genotype if space is None else space.check(genotype)

    @classmethod
    def _parse(cls, text: str) -> Genotype:
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
        """All nodes (normal cell first, 8 in the DARTS space) in canonical form: each node's two edges sorted
        by input."""
        out = []
        for edges in (self.normal, self.reduce):
            for j in range(self.n_nodes):
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
        if len(vector) not in tuple(4 * 2 * n for n in NODE_COUNTS):
            raise GenotypeError(f"an encoded genotype has {4 * 2 * NODES} integers, got {len(vector)}")
        nodes = []
        for n in range(len(vector) // 4):
            ia, oa, ib, ob = vector[4 * n : 4 * n + 4]
            for o in (oa, ob):
                if not 0 <= o < len(OPS):
                    raise GenotypeError(f"operation index {o} is out of range 0..{len(OPS) - 1}")
            nodes.append(((OPS[oa], ia), (OPS[ob], ib)))
        return cls.from_nodes(nodes)

    @classmethod
    def from_nodes(cls, nodes: tuple | list) -> Genotype:
        """Build a genotype from its nodes (normal cell's, then reduction cell's), each a pair of (op, input) edges."""
        flat = [edge for node in nodes for edge in node]
        half = len(flat) // 2
        return cls(normal=tuple(flat[:half]), reduce=tuple(flat[half:]))

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


@dataclass(frozen=True)
class SearchSpace:
    """Which genotypes a search may use: `nodes` intermediate nodes per cell, candidate operations `ops`, and
    whether the reduction cell is `tied` to the normal cell (one cell, used at both places).

    `canonical_nodes`: identify genotypes that build the same network up to a renumbering of the nodes (two
    nodes reading the same inputs are interchangeable). The DARTS space keeps its historical identity (only
    the order of a node's two edges is ignored), so its runs and results stay as they were.
    """

    name: str
    nodes: int
    ops: tuple[str, ...]
    tied: bool = False
    canonical_nodes: bool = False

    @property
    def concat(self) -> tuple[int, ...]:
        return concat_for(self.nodes)

    def __str__(self) -> str:
        return self.name

    # --- membership ---------------------------------------------------------------------------------------
    def check(self, genotype: Genotype) -> Genotype:
        """Return `genotype`, or raise `GenotypeError` (one line) if it is not in this space."""
        if genotype.n_nodes != self.nodes:
            raise GenotypeError(
                f"the genotype's cells have {genotype.n_nodes} nodes ({2 * genotype.n_nodes} (op, input) pairs); "
                f"the {self.name} space has {self.nodes} ({2 * self.nodes} pairs)"
            )
        for field in ("normal", "reduce"):
            for k, (op, _inp) in enumerate(genotype.cell(field)):
                if op not in self.ops:
                    raise GenotypeError(
                        f"{field}[{k}] uses {op!r}, which the {self.name} space does not have; "
                        f"allowed: {', '.join(self.ops)}"
                    )
        if self.tied and genotype.nodes()[: self.nodes] != genotype.nodes()[self.nodes :]:
            raise GenotypeError(
                f"the {self.name} space ties the reduction cell to the normal cell; "
                "give the same (op, input) pairs for reduce as for normal"
            )
        return genotype

    def parse(self, text: str) -> Genotype:
        """`Genotype.parse(text)`, checked to be in this space."""
        return Genotype.parse(text, self)

    # --- genes: what the GA varies --------------------------------------------------------------------------
    def genes(self, genotype: Genotype) -> tuple[tuple[Edge, Edge], ...]:
        """The canonical nodes the GA works on: both cells' nodes, or the normal cell's alone when tied."""
        nodes = genotype.nodes()
        return nodes[: self.nodes] if self.tied else nodes

    def from_genes(self, genes: tuple | list) -> Genotype:
        """Inverse of `genes`."""
        return Genotype.from_nodes(list(genes) * 2 if self.tied else list(genes))

    def node_position(self, gene: int) -> int:
        """Position within its cell (0..nodes-1) of gene `gene`."""
        return gene % self.nodes

    # --- sampling and counting ----------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> Genotype:
        """Draw a genotype uniformly at random (per node: a uniform pair of distinct inputs, ops uniform)."""
        genes = []
        for _cell in CELL_TYPES[: 1 if self.tied else 2]:
            for j in range(self.nodes):
                a, b = sorted(rng.sample(range(j + 2), 2))
                genes.append(((rng.choice(self.ops), a), (rng.choice(self.ops), b)))
        return self.from_genes(genes)

    def cell_size(self) -> int:
        """Distinct cells (each node: an unordered pair of distinct inputs, each with one operation)."""
        return math.prod(math.comb(j + 2, 2) * len(self.ops) ** 2 for j in range(self.nodes))

    def size(self) -> int:
        """Distinct genotypes, up to the order of a node's two edges."""
        return self.cell_size() if self.tied else self.cell_size() ** 2

    def enumerate(self, limit: int = 100_000) -> list[Genotype]:
        """Every genotype of the space, in a fixed order (up to the order of a node's two edges)."""
        if self.size() > limit:
            raise GenotypeError(f"the {self.name} space has {self.size():,} genotypes; enumerating it is only "
                                f"possible up to {limit:,}")
        per_node = [
            [((oa, a), (ob, b)) for a, b in itertools.combinations(range(j + 2), 2)
             for oa in self.ops for ob in self.ops]
            for j in range(self.nodes)
        ]
        cells = list(itertools.product(*per_node))
        combos = cells if self.tied else [n + r for n in cells for r in cells]
        return [self.from_genes(genes) for genes in combos]

    # --- identity -----------------------------------------------------------------------------------------
    def canonical(self, genotype: Genotype) -> Genotype:
        """The representative of the genotypes that build the same network as `genotype`."""
        if not self.canonical_nodes:
            return Genotype.from_nodes(genotype.nodes())
        nodes, n = genotype.nodes(), genotype.n_nodes
        return Genotype.from_nodes(_canonical_cell(nodes[:n]) + _canonical_cell(nodes[n:]))

    def key(self, genotype: Genotype) -> str:
        """Canonical identity: equal for genotypes that build the same network (see `canonical_nodes`)."""
        return _key(self, genotype)

    def distinct(self) -> int:
        """Distinct networks in the space (genotypes counted once per canonical form)."""
        if not self.canonical_nodes:
            return self.size()
        return len({self.key(g) for g in self.enumerate()})


@functools.lru_cache(maxsize=1 << 16)
def _key(space: SearchSpace, genotype: Genotype) -> str:
    """`SearchSpace.key`, remembered (searches ask for the same keys again and again)."""
    return genotype.key() if not space.canonical_nodes else str(space.canonical(genotype))


def _canonical_cell(nodes: tuple[tuple[Edge, Edge], ...]) -> tuple[tuple[Edge, Edge], ...]:
    """The smallest renumbering of a cell's nodes that keeps every node's inputs before it (a node j may read
    0..j+1): two nodes that read the same kind of inputs then get one order."""
    n = len(nodes)
    best = None
    for perm in itertools.permutations(range(n)):  # perm[old] = new position
        relabel = {0: 0, 1: 1, **{old + 2: new + 2 for old, new in enumerate(perm)}}
        placed: list = [None] * n
        for old, node in enumerate(nodes):
            edges = sorted((op, relabel[inp]) for op, inp in node)
            placed[perm[old]] = tuple(sorted(edges, key=lambda e: (e[1], e[0])))
        if all(inp <= j + 1 for j, node in enumerate(placed) for _op, inp in node):
            candidate = tuple(placed)
            if best is None or _node_order(candidate) < _node_order(best):
                best = candidate
    return best


def _node_order(nodes: tuple) -> tuple:
    return tuple((e[1], e[0]) for node in nodes for e in node)


DARTS = SearchSpace("darts", NODES, CANDIDATE_OPS)
"""The DARTS cell space: 4 nodes, 7 operations, normal and reduction cells chosen independently (the default)."""

MINI = SearchSpace(
    "mini", 2, ("max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3"), tied=True, canonical_nodes=True
)
"""A space small enough to train whole: 2 nodes, 4 operations, reduction cell = normal cell (768 genotypes)."""

SPACES: dict[str, SearchSpace] = {space.name: space for space in (DARTS, MINI)}
"""The built-in search spaces by name."""


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The built-in space called `name` (a `SearchSpace` passes through); a one-line error otherwise."""
    if isinstance(name, SearchSpace):
        return name
    if name not in SPACES:
        raise GenotypeError(f"unknown search space {name!r}{suggest(str(name), list(SPACES))}; allowed: "
                            f"{', '.join(SPACES)}")
    return SPACES[name]


def space_of(genotype: Genotype) -> SearchSpace:
    """The built-in space `genotype` belongs to (the first of `SPACES` that accepts it; DARTS if none does)."""
    for space in SPACES.values():
        try:
            space.check(genotype)
        except GenotypeError:
            continue
        return space
    return DARTS


def sample_genotype(rng: random.Random) -> Genotype:
    """Draw a genotype of the DARTS space uniformly at random (see `SearchSpace.sample`)."""
    return DARTS.sample(rng)


def cell_space_size() -> int:
    """Number of distinct cells of the DARTS space."""
    return DARTS.cell_size()


def space_size() -> int:
    """Number of distinct genotypes (normal x reduction cell) of the DARTS space, counted canonically."""
    return DARTS.size()


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
