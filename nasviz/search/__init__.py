"""Layer `search`: the architecture search. The loop (`loop.Search`, with its read-only `views`), its settings
(`config.SearchConfig`), population, genetic operators (`ga`) and a generation's `offspring`, path sampling, the
supernet's training phases (`phase_training`), the size budget, the search's data split (`data_split`), the fitness
sources and their evaluators (`fitness_sources`, `evaluators`), the bookkeeping of individuals and measurements
(`ledger`, `lineage`), stop requests (`stopping`), the search's state (`checkpoint`) and resuming it (`resume`), its
history rows and result (`search_records`), zero-cost proxies (`proxies`) and the final pick (`final_pick`). It
may import every lower layer (base, `space`, `data`, `train`, `runs`, `table`); `deploy`, `viz`, `notebooks`,
`headless` and `cli` may import it.

`Search` and `SearchConfig` load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {"Search": "loop", "SearchConfig": "config", "PRESETS": "config"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
