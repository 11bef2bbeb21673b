"""The network a latency profile describes, and the pieces it is timed in.

A `Layout` fixes a search-width network (`nasviz.network.SearchNetwork`): space, image shape, classes, channels and
cells. Its forward pass is a sum of pieces: the stem; per cell the two preprocessing convolutions, one operation per
edge and the node sums with the concatenation ("combine"); the head (global pooling and classifier). Every piece
but the operations is the same for every genotype; an operation's cost depends on its input shape and stride,
which the cell's position fixes (`CellShape`).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nasviz.space.cells import edge_key
from nasviz.space.genotypes import Genotype, get_space
from nasviz.space.supernet import Supernet


@dataclass(frozen=True)
class Layout:
    """The search-width network a profile times: `space`, images `in_channels` x `height` x `width`,
    `num_classes`, initial `channels` and `layers` cells (as `SearchConfig` and the dataset give them)."""

    space: str
    in_channels: int
    height: int
    width: int
    num_classes: int
    channels: int
    layers: int

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (f"space {self.space}, images {self.in_channels}x{self.height}x{self.width}, {self.num_classes} "
                f"classes, channels {self.channels}, layers {self.layers}")


@dataclass(frozen=True)
class CellShape:
    """Where a cell stands: whether it reduces, and its states' channels and resolution (its inputs' after
    preprocessing; a reduction cell's nodes are at half of it)."""

    reduction: bool
    channels: int
    height: int
    width: int


def op_key(op: str, channels: int, height: int, width: int, stride: int) -> str:
    """The profile's name for operation `op` on a channels x height x width input with `stride`."""
    return f"{op}@{channels}x{height}x{width}/s{stride}"


def edge_stride(cell: CellShape, inp: int) -> int:
    """A reduction cell's edges from its two inputs stride by 2; every other edge by 1."""
    return 2 if cell.reduction and inp < 2 else 1


def edge_input(cell: CellShape, inp: int) -> tuple[int, int, int]:
    """Channels and resolution of the state an edge reads (a reduction cell's nodes are at half resolution)."""
    if cell.reduction and inp >= 2:
        return cell.channels, (cell.height + 1) // 2, (cell.width + 1) // 2
    return cell.channels, cell.height, cell.width


def is_free(op: str, stride: int) -> bool:
    """A stride-1 skip connection is the identity: it computes nothing (the node's sum is in "combine")."""
    return op == "skip_connect" and stride == 1


def genotype_ops(genotype: Genotype, cells: list[CellShape]) -> list[str]:
    """The profile keys of the operations `genotype`'s network runs, one per edge (free ones left out)."""
    keys = []
    for cell in cells:
        for op, inp in genotype.reduce if cell.reduction else genotype.normal:
            stride = edge_stride(cell, inp)
            if not is_free(op, stride):
                keys.append(op_key(op, *edge_input(cell, inp), stride))
    return keys


class Combine(nn.Module):
    """What a cell does besides its operations: one sum per node and the concatenation of the nodes. Chained on two
    inputs so that no sum repeats another (a runtime would compute a repeated one once)."""

    def __init__(self, nodes: int) -> None:
        super().__init__()
        self.nodes = nodes

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        outs, prev = [], a
        for j in range(self.nodes):
            prev = prev + (b if j % 2 == 0 else a)
            outs.append(prev)
        return torch.cat(outs, dim=1)


class Head(nn.Module):
    """Global average pooling and the linear classifier."""

    def __init__(self, pool: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.pool, self.classifier = pool, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(x).flatten(1))


@dataclass
class Piece:
    """One timed part of the network: a module and the shapes (batch left out) of its inputs."""

    key: str
    module: nn.Module
    inputs: tuple[tuple[int, ...], ...]
    kind: str
    """"op" (depends on the genotype) or "fixed" (stem, preprocessing, combine, head: in every network)."""


def build_supernet(layout: Layout, seed: int = 0) -> Supernet:
    """The layout's supernet (every operation of every edge), in eval mode, weights drawn from `seed`."""
    torch.manual_seed(seed)
    net = Supernet(layout.in_channels, layout.num_classes, layout.channels, layout.layers, get_space(layout.space))
    return net.eval()


def cell_shapes(net: Supernet, layout: Layout) -> tuple[list[CellShape], list[tuple[tuple[int, ...], ...]],
                                                         tuple[int, ...]]:
    """Each cell's `CellShape`, the input shapes of its two preprocessing modules, and the head's input shape,
    found by running one path of `net` on zeros (batch 1) with hooks."""
    seen: dict[str, tuple[int, ...]] = {}
    hooks = []
    for i, cell in enumerate(net.cells):
        for name in ("preprocess0", "preprocess1"):
            hooks.append(getattr(cell, name).register_forward_hook(
                lambda _m, args, out, k=f"{i}.{name}": seen.update({k: tuple(args[0].shape[1:]),
                                                                     k + ".out": tuple(out.shape[1:])})))
    head_in: list[tuple[int, ...]] = []
    hooks.append(net.pool.register_forward_hook(lambda _m, args, _o: head_in.append(tuple(args[0].shape[1:]))))
    space = get_space(layout.space)
    genotype = space.sample(random.Random(0))
    try:
        with torch.no_grad():
            net(torch.zeros(1, layout.in_channels, layout.height, layout.width), genotype)
    finally:
        for h in hooks:
            h.remove()
    cells, pre = [], []
    for i, cell in enumerate(net.cells):
        c, h, w = seen[f"{i}.preprocess1.out"]
        cells.append(CellShape(cell.reduction, c, h, w))
        pre.append((seen[f"{i}.preprocess0"], seen[f"{i}.preprocess1"]))
    return cells, pre, head_in[0]


def pieces(layout: Layout, seed: int = 0) -> tuple[list[Piece], list[CellShape]]:
    """Every piece of `layout`'s networks (each operation once per input shape and stride) and the cells' shapes."""
    net = build_supernet(layout, seed)
    space = get_space(layout.space)
    cells, pre, head_in = cell_shapes(net, layout)
    out = [Piece("stem", net.stem, ((layout.in_channels, layout.height, layout.width),), "fixed")]
    ops: dict[str, Piece] = {}
    for i, (cell, shape) in enumerate(zip(net.cells, cells, strict=True)):
        out.append(Piece(f"cell{i}.preprocess0", cell.preprocess0, (pre[i][0],), "fixed"))
        out.append(Piece(f"cell{i}.preprocess1", cell.preprocess1, (pre[i][1],), "fixed"))
        node_shape = edge_input(shape, 2)
        out.append(Piece(f"cell{i}.combine", Combine(cell.nodes), (node_shape, node_shape), "fixed"))
        for node in range(cell.nodes):
            for inp in range(node + 2):
                stride = edge_stride(shape, inp)
                for op in space.ops:
                    key = op_key(op, *edge_input(shape, inp), stride)
                    if not is_free(op, stride) and key not in ops:
                        ops[key] = Piece(key, cell.edges[edge_key(node, inp)][op], (edge_input(shape, inp),), "op")
    out.append(Piece("head", Head(net.pool, net.classifier), (head_in,), "fixed"))
    return out + list(ops.values()), cells
