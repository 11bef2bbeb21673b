"""Standalone networks built from a genotype, plus their parameter and FLOP counts.

- `SearchNetwork`: the search-width network (same stem, cells and channels as the supernet, only the
  genotype's operations), whose outputs equal the supernet's path once the weights are copied over.
- `EvalNetwork`: DARTS's evaluation network (affine BatchNorm, auxiliary head, drop-path).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nasviz.space.cells import CellNetwork, EdgeOps
from nasviz.space.genotypes import Genotype
from nasviz.space.supernet import Supernet


def genotype_edges(genotype: Genotype, cell_type: str) -> EdgeOps:
    """The edges a genotype's cell uses, each with its single operation."""
    edges = genotype.cell(cell_type)
    return {(k // 2, inp): (op,) for k, (op, inp) in enumerate(edges)}


class GenotypeNetwork(CellNetwork):
    """A `CellNetwork` holding only one genotype's operations; `forward(x)` needs no genotype."""

    def __init__(self, genotype: Genotype, *args, **kwargs) -> None:
        super().__init__(lambda cell_type: genotype_edges(genotype, cell_type), *args, **kwargs)
        self.genotype = genotype

    def forward_with_aux(self, x: torch.Tensor, genotype: Genotype | None = None):
        return super().forward_with_aux(x, self.genotype if genotype is None else genotype)

    def forward(self, x: torch.Tensor, genotype: Genotype | None = None) -> torch.Tensor:
        return self.forward_with_aux(x, genotype)[0]


class SearchNetwork(GenotypeNetwork):
    """The genotype at the supernet's width and depth (non-affine BatchNorm, BatchNorm after pooling)."""

    def __init__(self, genotype: Genotype, in_channels: int, num_classes: int, channels: int = 8, layers: int = 5):
        super().__init__(genotype, in_channels, num_classes, channels, layers, affine=False, pool_bn=True)


class EvalNetwork(GenotypeNetwork):
    """DARTS's evaluation network: set `drop_prob` for drop-path; `forward_with_aux` gives auxiliary logits."""

    def __init__(
        self,
        genotype: Genotype,
        in_channels: int,
        num_classes: int,
        channels: int = 36,
        layers: int = 20,
        auxiliary: bool = True,
    ) -> None:
        super().__init__(
            genotype, in_channels, num_classes, channels, layers, affine=True, pool_bn=False, auxiliary=auxiliary
        )


def copy_path_weights(supernet: Supernet, network: SearchNetwork) -> SearchNetwork:
    """Load the supernet's weights (and BatchNorm statistics) of `network`'s path into `network`."""
    source = supernet.state_dict()
    network.load_state_dict({name: source[name] for name in network.state_dict()})
    return network


def count_params(model: nn.Module, include_aux: bool = False) -> int:
    """Trainable parameters, excluding the auxiliary head unless asked (DARTS's convention)."""
    return sum(
        p.numel() for name, p in model.named_parameters() if p.requires_grad and (include_aux or "aux_head" not in name)
    )


def count_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass on one image (torch's FLOP counter; multiply-adds = FLOPs / 2)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def describe(
    genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int, channels: int, layers: int
) -> dict[str, int]:
    """Parameters (auxiliary head excluded) and FLOPs of the evaluation network of `genotype`."""
    with torch.device("meta"):
        net = EvalNetwork(genotype, input_shape[0], num_classes, channels, layers, auxiliary=False)
    return {"params": count_params(net), "flops": count_flops(net, input_shape)}


def search_params(genotype: Genotype, in_channels: int, num_classes: int, channels: int, layers: int) -> int:
    """Parameters of the search-width network of `genotype` (cheap: built on the meta device)."""
    with torch.device("meta"):
        return count_params(SearchNetwork(genotype, in_channels, num_classes, channels, layers))

