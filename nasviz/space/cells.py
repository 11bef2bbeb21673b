"""Cells and the cell-stacked network shared by the supernet and the standalone networks.

A `Cell` owns, for each edge (node j, input i), the operations that edge may run. The supernet gives every
edge all seven candidate operations; a standalone network gives each chosen edge just its one operation.
Both run the same `forward(x, genotype)`, so a path of the supernet computes exactly what the standalone
network of that genotype computes, and no unchosen operation does any work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from nasviz.space.genotypes import Edge, Genotype
from nasviz.space.ops import FactorizedReduce, ReLUConvBN, make_op

EdgeOps = Mapping[tuple[int, int], Iterable[str]]
"""For each edge (node, input): the operation names it holds."""


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability `drop_prob`, rescaling the rest (DARTS's drop-path)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def edge_key(node: int, inp: int) -> str:
    return f"{node}_{inp}"


class Cell(nn.Module):
    """A DARTS cell: two preprocessed inputs, n nodes each summing two edges, output = concat of the nodes."""

    def __init__(
        self,
        edge_ops: EdgeOps,
        c_prev_prev: int,
        c_prev: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        affine: bool,
        pool_bn: bool,
    ) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c, affine) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine)
        self.nodes = 1 + max(node for node, _inp in edge_ops)
        self.edges = nn.ModuleDict()
        for (node, inp), ops in edge_ops.items():
            stride = 2 if reduction and inp < 2 else 1
            self.edges[edge_key(node, inp)] = nn.ModuleDict({op: make_op(op, c, stride, affine, pool_bn) for op in ops})

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, edges: tuple[Edge, ...], drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.nodes):
            total = None
            for op_name, inp in edges[2 * node : 2 * node + 2]:
                op = self.edges[edge_key(node, inp)][op_name]
                h = op(states[inp])
                if drop_prob > 0 and self.training and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier, pooled adaptively to 2x2 so it works for 28x28 and 32x32 inputs alike."""

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class CellNetwork(nn.Module):
    """Stem, `layers` cells (reductions at 1/3 and 2/3 depth), global pooling and a linear classifier."""

    def __init__(
        self,
        edge_ops_for: Callable[[str], EdgeOps],
        in_channels: int,
        num_classes: int,
        channels: int,
        layers: int,
        affine: bool,
        pool_bn: bool,
        auxiliary: bool = False,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        self.channels, self.layers = channels, layers
        self.drop_prob = 0.0
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3 if auxiliary else -1
        reduction_prev = False
        c_aux = c_prev
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell_type = "reduce" if reduction else "normal"
            self.cells.append(
                Cell(edge_ops_for(cell_type), c_prev_prev, c_prev, c_curr, reduction, reduction_prev, affine, pool_bn)
            )
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, self.cells[-1].nodes * c_curr
            if i == self.aux_index:
                c_aux = c_prev
        self.aux_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def path_modules(self, genotype: Genotype) -> list[nn.Module]:
        """The modules a forward pass of `genotype` runs: the stem, each cell's preprocessing and chosen
        operations, the auxiliary head (if any) and the classifier. The rest of a supernet is idle on this path."""
        modules: list[nn.Module] = [self.stem]
        for cell in self.cells:
            edges = genotype.reduce if cell.reduction else genotype.normal
            modules += [cell.preprocess0, cell.preprocess1]
            modules += [cell.edges[edge_key(k // 2, inp)][op_name] for k, (op_name, inp) in enumerate(edges)]
        if self.aux_head is not None:
            modules.append(self.aux_head)
        modules.append(self.classifier)
        return modules

    def forward_with_aux(self, x: torch.Tensor, genotype: Genotype) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits and, in training mode with an auxiliary head, the auxiliary logits."""
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            edges = genotype.reduce if cell.reduction else genotype.normal
            s0, s1 = s1, cell(s0, s1, edges, self.drop_prob)
            if i == self.aux_index and self.training:
                aux = self.aux_head(s1)
        return self.classifier(self.pool(s1).flatten(1)), aux

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:
        return self.forward_with_aux(x, genotype)[0]
