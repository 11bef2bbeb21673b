"""Helpers shared by the figures, the dashboard and the replay: genotype parsing, short names, colours, tables."""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from nasviz.runs import lineage
from nasviz.runs.history_row import HistoryRow
from nasviz.space.genotypes import CELL_TYPES, DARTS, NODES, Genotype, SearchSpace, space_of

Row = HistoryRow
"""One history row (a history.jsonl line): `nasviz.runs.history_row.HistoryRow`."""

GenotypeLike = Genotype | str
"""A Genotype, its DARTS text, or a fixture name such as 'DARTS_V2'."""

OP_SHORT: dict[str, str] = {
    "max_pool_3x3": "max3",
    "avg_pool_3x3": "avg3",
    "skip_connect": "skip",
    "sep_conv_3x3": "sep3",
    "sep_conv_5x5": "sep5",
    "dil_conv_3x3": "dil3",
    "dil_conv_5x5": "dil5",
}
"""Short operation names for tables and hover text."""

OP_COLORS: dict[str, str] = {
    "max_pool_3x3": "#8c564b",
    "avg_pool_3x3": "#bcbd22",
    "skip_connect": "#7f7f7f",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#d62728",
    "dil_conv_5x5": "#ff7f0e",
}
"""One colour per candidate operation, used by the cell drawings."""

ROLE_COLORS = {"initial": "#636efa", "parent": "#636efa", "offspring": "#ef553b"}
CELL_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Genotype:
    return Genotype.parse(text)


def as_genotype(genotype: GenotypeLike) -> Genotype:
    """A Genotype from a Genotype, DARTS text or fixture name (parsed once per text, cached)."""
    return genotype if isinstance(genotype, Genotype) else _parse_text(str(genotype))


def node_labels(nodes: int = NODES) -> list[str]:
    """Row labels of the per-node matrices: 'normal · node 0' ... 'reduce · node 3' (for `nodes` per cell)."""
    return [f"{cell} · node {j}" for cell in CELL_TYPES for j in range(nodes)]


def paths_space(paths: Sequence[GenotypeLike]) -> SearchSpace:
    """The search space of a list of paths (that of the first; the DARTS space when there is none)."""
    return space_of(as_genotype(paths[0])) if paths else DARTS


def op_counts(paths: Sequence[GenotypeLike], space: SearchSpace | None = None) -> list[list[int]]:
    """How often each operation is used on each node's two edges: one row per node (normal nodes, then reduce
    nodes; 8 in the DARTS space) x one column per operation of the space (7 in DARTS)."""
    space = space or paths_space(paths)
    counts = [[0] * len(space.ops) for _ in range(2 * space.nodes)]
    index = {op: k for k, op in enumerate(space.ops)}
    for path in paths:
        g = as_genotype(path)
        for c, cell in enumerate(CELL_TYPES):
            edges = g.cell(cell)
            for j in range(space.nodes):
                for op, _inp in edges[2 * j : 2 * j + 2]:
                    counts[c * space.nodes + j][index[op]] += 1
    return counts


def gene_entropy(genotypes: Sequence[GenotypeLike]) -> float:
    """Mean over the 32 canonical genes (per node: input, op, input, op) of the Shannon entropy in bits."""
    if not genotypes:
        return 0.0
    vectors = [as_genotype(g).encode() for g in genotypes]
    total = 0.0
    for gene in zip(*vectors):
        n = len(gene)
        total -= sum(c / n * math.log2(c / n) for c in Counter(gene).values())
    return total / len(vectors[0])


def distinct(genotypes: Iterable[GenotypeLike]) -> int:
    """Number of distinct genotypes, counted canonically (node edge order ignored)."""
    return len({as_genotype(g).key() for g in genotypes})


def genotype_ids(rows: Sequence[Row]) -> dict[str, str]:
    """The lineage id (`g<born>-<index>`, `nasviz.runs.lineage`) of each genotype text of the history, for hover
    text, tables and clicks; runs recorded before lineage get the ids the same rule gives."""
    return lineage.ids_by_genotype(rows)


def cell_summary(genotype: GenotypeLike, cell_type: str) -> str:
    """One cell as short text, node by node: 'sep3←0 sep3←1 | ...' (input 0/1 are c_{k-2}/c_{k-1})."""
    edges = as_genotype(genotype).cell(cell_type)
    return " | ".join(
        " ".join(f"{OP_SHORT[op]}←{inp}" for op, inp in edges[2 * j : 2 * j + 2]) for j in range(len(edges) // 2)
    )


def ranks(values: Sequence[float]) -> list[int]:
    """1-based ranks, best (highest) first; ties keep their order."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    out = [0] * len(values)
    for r, i in enumerate(order, start=1):
        out[i] = r
    return out


def _wrapping_cell(genotype: GenotypeLike, cell_type: str) -> str:
    """`cell_summary` as HTML that wraps between nodes, never inside one: a narrow page shows the table whole."""
    nodes = cell_summary(genotype, cell_type).split(" | ")
    return " | ".join(f"<span style='white-space:nowrap'>{html.escape(node)}</span>" for node in nodes)


def population_table_html(row: Row | None, ids: dict[str, str] | None = None) -> str:
    """The population of one history row as an HTML table: rank, id, fitness, params, origin, both cells."""
    if not row:
        return "<i>no population yet</i>"
    ids = ids if ids is not None else genotype_ids([row])
    by_text = {ind["genotype"]: ind for ind in row.get("individuals", ()) if ind.get("selected")}
    head = ("rank", "id", "fitness", "before", "params", "origin", "normal cell", "reduction cell")
    cells = "".join(f"<th style='text-align:left;padding:2px 6px'>{h}</th>" for h in head)
    lines = [f"<b>Population after generation {row['generation']}</b>",
             "<div style='max-width:100%;overflow-x:auto'>",
             "<table style='border-collapse:collapse;font-size:12px;font-family:monospace'>", f"<tr>{cells}</tr>"]
    for rank, (text, fit, params) in enumerate(zip(row["population"], row["fitness"], row["params"]), start=1):
        ind = by_text.get(text, {})
        before = ind.get("fitness_before")
        values = (
            str(rank), ids.get(text, "?"), f"{fit:.4f}", "" if before is None else f"{before:.4f}",
            f"{params:,}", ind.get("role", ""),
        )
        tds = "".join(f"<td style='padding:2px 6px;white-space:nowrap'>{html.escape(v)}</td>" for v in values)
        tds += "".join(f"<td style='padding:2px 6px'>{_wrapping_cell(text, c)}</td>" for c in ("normal", "reduce"))
        lines.append(f"<tr title='{html.escape(text, quote=True)}'>{tds}</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)
