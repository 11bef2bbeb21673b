"""The weight-sharing supernet: every edge of every cell holds all candidate operations; a forward pass
runs one path (a genotype), so it costs what the standalone network of that genotype costs."""

from __future__ import annotations

from nasviz.space.cells import CellNetwork, EdgeOps
from nasviz.space.genotypes import DARTS, SearchSpace


def all_edges(space: SearchSpace = DARTS) -> EdgeOps:
    """Every edge (node j, input i < j + 2) of `space`'s cells with all its candidate operations."""
    return {(node, inp): space.ops for node in range(space.nodes) for inp in range(node + 2)}


class Supernet(CellNetwork):
    """Single-path supernet over a cell space (DARTS's by default): `forward(x, genotype)` runs that path.

    BatchNorm is not affine (as in DARTS's search network): its statistics are recalibrated per path.
    """

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 8, layers: int = 5, space: SearchSpace = DARTS
    ) -> None:
        super().__init__(
            lambda _cell_type: all_edges(space),
            in_channels,
            num_classes,
            channels,
            layers,
            affine=False,
            pool_bn=True,
        )
        self.space = space
