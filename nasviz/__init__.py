"""nasviz: one-shot neural architecture search with supernet fine-tuning (SFT-GA), made visible."""

from nasviz.errors import NasvizError
from nasviz.space import CANDIDATE_OPS, FIXTURES, OPS, Genotype, sample_genotype

__version__ = "0.1.0"

__all__ = ["CANDIDATE_OPS", "FIXTURES", "OPS", "Genotype", "NasvizError", "sample_genotype", "__version__"]
