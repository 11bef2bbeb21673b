"""nasviz: one-shot neural architecture search with supernet fine-tuning (SFT-GA), made visible."""

from nasviz.errors import NasvizError
from nasviz.space import CANDIDATE_OPS, FIXTURES, OPS, Genotype, sample_genotype
from nasviz.version import __version__

__all__ = [
    "CANDIDATE_OPS", "FIXTURES", "OPS", "Genotype", "NasvizError", "Search", "SearchConfig", "load_model",
    "sample_genotype", "__version__",
]


def __getattr__(name: str):
    """Import the torch-heavy engine lazily: `from nasviz import Search, SearchConfig, load_model`."""
    if name == "Search":
        from nasviz.search.loop import Search

        return Search
    if name == "SearchConfig":
        from nasviz.search.config import SearchConfig

        return SearchConfig
    if name == "load_model":
        from nasviz.deploy.model_file import load_model

        return load_model
    raise AttributeError(f"module 'nasviz' has no attribute {name!r}")
