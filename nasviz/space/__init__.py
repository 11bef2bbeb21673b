"""Layer `space`: what can be searched and built. Genotypes and search spaces (`genotypes`), the candidate
operations (`ops`), cells and networks built from a genotype (`cells`, `network`) and the weight-sharing supernet
(`supernet`). It imports only the base modules (`nasviz.errors`, `nasviz.version`, `nasviz.settings`,
`nasviz.analysis`, `nasviz.options`, `nasviz.lazy`); every other layer may import it.

The genotype names below are imported eagerly (no torch); the networks on first use.
"""

from nasviz.lazy import lazy_exports
from nasviz.space.genotypes import (
    CANDIDATE_OPS,
    CELL_TYPES,
    CONCAT,
    DARTS,
    FIXTURES,
    MINI,
    NODE_COUNTS,
    NODES,
    OPS,
    SPACES,
    Edge,
    Genotype,
    GenotypeError,
    SearchSpace,
    cell_space_size,
    concat_for,
    get_space,
    sample_genotype,
    space_of,
    space_size,
)

__all__ = [
    "CANDIDATE_OPS", "CELL_TYPES", "CONCAT", "DARTS", "FIXTURES", "MINI", "NODES", "NODE_COUNTS", "OPS", "SPACES",
    "Edge", "EvalNetwork", "Genotype", "GenotypeError", "SearchNetwork", "SearchSpace", "Supernet",
    "cell_space_size", "concat_for", "count_flops", "count_params", "get_space", "sample_genotype", "space_of",
    "space_size",
]

__getattr__ = lazy_exports(__name__, {"Supernet": "supernet", "SearchNetwork": "network", "EvalNetwork": "network",
                                      "count_params": "network", "count_flops": "network"})
