"""The fitness sources a search can score its candidates with, by name (`SearchConfig.fitness`).

This registry imports nothing heavy, so settings are checked before torch is loaded; each entry names the
`search.evaluators` class that does the work. Adding a source is one `Evaluator` subclass there and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A fitness source: the evaluator class (by name, in `nasviz.search.evaluators`) and what it needs."""

    evaluator: str
    """The `nasviz.search.evaluators` class that scores candidates."""
    trains: bool = False
    """Whether it trains a weight-sharing supernet (warm-up and fine-tuning)."""
    needs_table: bool = False
    """Whether it looks candidates up in a ground-truth table."""
    doc: str = ""


SOURCES: dict[str, Source] = {
    "supernet": Source("SupernetEvaluator", trains=True, doc="accuracy with weights inherited from the supernet"),
    "table": Source("TableEvaluator", needs_table=True, doc="accuracy in the ground-truth table (no training)"),
    "synflow": Source("ProxyEvaluator", doc="zero-cost proxy: synaptic flow at initialisation (Tanaka et al. 2020)"),
    "naswot": Source("ProxyEvaluator", doc="zero-cost proxy: log-det of the ReLU code kernel (Mellor et al. 2021)"),
    "snip": Source("ProxyEvaluator", doc="zero-cost proxy: connection sensitivity (Lee et al. 2019)"),
    "grad_norm": Source("ProxyEvaluator", doc="zero-cost proxy: norm of the loss gradient (Abdelfattah et al. 2021)"),
    "jacob_cov": Source("ProxyEvaluator", doc="zero-cost proxy: input-Jacobian correlation (Mellor et al. 2020)"),
    "params": Source("ProxyEvaluator", doc="size baseline: trainable parameters (more is better)"),
    "flops": Source("ProxyEvaluator", doc="size baseline: FLOPs per image (more is better)"),
}
"""Every fitness source, by the name `SearchConfig.fitness` takes."""
