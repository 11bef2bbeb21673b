"""A DARTS-style mixed-operation supernet, only as the benchmarks' comparison point (not part of nasviz).

Every edge runs all eight DARTS operations (`none` included) and sums them weighted by softmax(alpha), every
node sums all its incoming edges (14 edges per cell), as in DARTS's `model_search.py`. The operations are
nasviz's own (`nasviz.space.ops.make_op`, non-affine BatchNorm, BatchNorm after pooling), so the only difference
from the single-path supernet is the work on the unchosen operations and edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.space.genotypes import NODES, OPS
from nasviz.space.ops import FactorizedReduce, ReLUConvBN, make_op


class Zero(nn.Module):
    """DARTS's `none`: zeros of the output's shape (computed, as DARTS does, by multiplying by 0)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


class MixedOp(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            Zero(stride) if name == "none" else make_op(name, c, stride, affine=False, pool_bn=True) for name in OPS
        )

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class MixedCell(nn.Module):
    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (
            FactorizedReduce(c_prev_prev, c, False) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0, False)
        )
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, False)
        self.ops = nn.ModuleList(
            MixedOp(c, 2 if reduction and inp < 2 else 1) for node in range(NODES) for inp in range(node + 2)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(NODES):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[2:], dim=1)


class MixedNetwork(nn.Module):
    """DARTS's search network at nasviz's layout (stem x3 channels, reductions at 1/3 and 2/3 depth)."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 8, layers: int = 5) -> None:
        super().__init__()
        c_curr = 3 * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(MixedCell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, NODES * c_curr
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        edges = sum(range(2, NODES + 2))
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(edges, len(OPS)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(edges, len(OPS)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weights(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        normal, reduce = F.softmax(self.alphas_normal, dim=-1), F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(self.pool(s1).flatten(1))
