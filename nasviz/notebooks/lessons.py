"""Tables and checks for the lessons on the search space and the supernet: operations, space size, paths,
weight sharing, trained-path statistics, inherited fitness."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nasviz.notebooks.tables import html_table

_OP_INFO = {
    "none": ("zero", "no connection (DARTS's 'none'); never sampled in a path"),
    "max_pool_3x3": ("pooling", "3x3 max pooling"),
    "avg_pool_3x3": ("pooling", "3x3 average pooling"),
    "skip_connect": ("identity", "identity (a factorized 1x1 reduce when the cell halves the resolution)"),
    "sep_conv_3x3": ("convolution", "ReLU, depthwise 3x3 + pointwise 1x1, BN; twice"),
    "sep_conv_5x5": ("convolution", "ReLU, depthwise 5x5 + pointwise 1x1, BN; twice"),
    "dil_conv_3x3": ("convolution", "ReLU, depthwise 3x3 with dilation 2 + pointwise 1x1, BN"),
    "dil_conv_5x5": ("convolution", "ReLU, depthwise 5x5 with dilation 2 + pointwise 1x1, BN"),
}


def operations_table(channels: int = 16):
    """The eight DARTS operations: family, what each does, and its parameters on one edge of `channels`."""
    from nasviz.space.genotypes import OPS
    from nasviz.space.network import count_params
    from nasviz.space.ops import make_op

    rows = []
    for op in OPS:
        family, what = _OP_INFO[op]
        params = 0 if op == "none" else count_params(make_op(op, channels, 1, affine=True))
        rows.append({"operation": op, "family": family, "what it computes": what,
                     f"parameters (C={channels}, stride 1)": params, "in a path": "no" if op == "none" else "yes"})
    return html_table(rows, caption="The DARTS operations, in DARTS order")


def space_size_table():
    """How many choices each node of a cell has, and how many cells and genotypes that makes."""
    from nasviz.space.genotypes import CANDIDATE_OPS, NODES, cell_space_size, space_size

    k = len(CANDIDATE_OPS)
    rows = []
    for j in range(NODES):
        pairs = math.comb(j + 2, 2)
        rows.append({"node": j, "inputs to choose from": j + 2, "pairs of distinct inputs": pairs,
                     "operations per edge": k, "choices for this node": pairs * k * k})
    rows.append({"node": "one cell", "choices for this node": cell_space_size()})
    rows.append({"node": "genotype (normal x reduction)", "choices for this node": space_size()})
    return html_table(rows, caption=f"Size of the DARTS cell space ({k} operations per edge, 'none' excluded)")


def path_table(genotypes: dict[str, Any], input_shape: Sequence[int], num_classes: int, channels: int,
               layers: int):
    """Parameters and FLOPs of each genotype's path (its standalone search-width network) next to the whole
    supernet's parameters."""
    import torch

    from nasviz.space.network import SearchNetwork, count_flops, count_params
    from nasviz.space.supernet import Supernet
    from nasviz.viz.common import as_genotype

    with torch.device("meta"):
        total = count_params(Supernet(input_shape[0], num_classes, channels, layers))
    rows = [{"network": "whole supernet (every operation on every edge)", "parameters": total}]
    for name, genotype in genotypes.items():
        net = SearchNetwork(as_genotype(genotype), input_shape[0], num_classes, channels, layers)
        params = count_params(net)
        rows.append({"network": f"path: {name}", "parameters": params,
                     "share of the supernet": f"{100 * params / total:.1f} %",
                     "MFLOPs per image": round(count_flops(net, tuple(input_shape)) / 1e6, 2)})
    return html_table(rows, caption=f"{layers} cells, {channels} initial channels, input {tuple(input_shape)}")


def genotype_table(genotypes: dict[str, Any]):
    """Genotypes side by side, node by node ('sep3←0 sep3←1 | …'; inputs 0 and 1 are c_{k-2} and c_{k-1})."""
    from nasviz.viz.common import cell_summary

    rows = [{"genotype": name, "normal cell": cell_summary(g, "normal"), "reduction cell": cell_summary(g, "reduce")}
            for name, g in genotypes.items()]
    return html_table(rows, caption="node 0 | node 1 | node 2 | node 3, each: operation←input")


def shared_edges(a, b) -> int:
    """How many of the 16 (cell, node, input, operation) choices two genotypes share: the supernet modules both
    paths would train."""
    from nasviz.space.genotypes import CELL_TYPES
    from nasviz.viz.common import as_genotype

    a, b = as_genotype(a), as_genotype(b)

    def choices(g):
        return {(t, k // 2, inp, op) for t in CELL_TYPES for k, (op, inp) in enumerate(g.cell(t))}

    return len(choices(a) & choices(b))


def weight_sharing_check(supernet, genotype, x) -> float:
    """Copy `genotype`'s path out of the supernet into a standalone network and return the largest difference
    of their outputs on `x` (evaluation mode): 0 means the path *is* that network, with the same weights."""
    import torch

    from nasviz.space.network import SearchNetwork, copy_path_weights
    from nasviz.viz.common import as_genotype

    genotype = as_genotype(genotype)
    net = SearchNetwork(genotype, x.shape[1], supernet.classifier.out_features, supernet.channels, supernet.layers)
    copy_path_weights(supernet, net)
    was = supernet.training
    supernet.eval()
    net.eval()
    with torch.no_grad():
        diff = (supernet(x, genotype) - net(x)).abs().max().item()
    supernet.train(was)
    return diff


def path_statistics(paths: Sequence[Any]):
    """How often each operation and each input was trained in `paths` (fractions of all edges), summed over
    cells and nodes."""
    from collections import Counter

    from nasviz.space.genotypes import CANDIDATE_OPS, CELL_TYPES
    from nasviz.viz.common import as_genotype

    ops, inputs = Counter(), Counter()
    for path in paths:
        g = as_genotype(path)
        for t in CELL_TYPES:
            for op, inp in g.cell(t):
                ops[op] += 1
                inputs[inp] += 1
    edges = max(sum(ops.values()), 1)
    rows = [{"operation": op, "edges trained": ops[op], "share": ops[op] / edges} for op in CANDIDATE_OPS]
    distinct = len({as_genotype(p).key() for p in paths})
    return html_table(rows, caption=f"{len(paths)} paths trained ({distinct} distinct); "
                                    f"uniform sampling gives each operation 1/{len(CANDIDATE_OPS)} ≈ "
                                    f"{1 / len(CANDIDATE_OPS):.3f}")


def inherited_fitness(search, genotypes: dict[str, Any]):
    """Fitness of some genotypes with the supernet's current (inherited) weights, as the search measures it:
    BatchNorm statistics recalibrated for the path, then accuracy on the fitness images."""
    from nasviz.train.steps import fitness
    from nasviz.viz.common import as_genotype

    rows = [{"genotype": name,
             "fitness (inherited weights)": fitness(search.supernet, as_genotype(g), search.calibration,
                                                    search.fitness_batches),
             "params": search.params_of(as_genotype(g))} for name, g in genotypes.items()]
    return html_table(rows, caption=f"after {search.steps} supernet steps")
