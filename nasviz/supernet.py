"""The weight-sharing supernet: every edge of every cell holds all candidate operations; a forward pass
runs one path (a genotype), so it costs what the standalone network of that genotype costs."""

from __future__ import annotations

from nasviz.cells import CellNetwork, EdgeOps
from nasviz.space import CANDIDATE_OPS, NODES


def all_edges() -> EdgeOps:
    """Every edge (node j, input i < j + 2) with all candidate operations."""
    return {(node, inp): CANDIDATE_OPS for node in range(NODES) for inp in range(node + 2)}


class Supernet(CellNetwork):
    """Single-path supernet over the DARTS cell space: `forward(x, genotype)` runs exactly that path.

    BatchNorm is not affine (as in DARTS's search network): its statistics are recalibrated per path.
    """

    def __init__(self, in_channels: int, num_classes: int, channels: int = 8, layers: int = 5) -> None:
        super().__init__(
            lambda _cell_type: all_edges(),
            in_channels,
            num_classes,
            channels,
            layers,
            affine=False,
            pool_bn=True,
        )
