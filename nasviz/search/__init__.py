"""Layer `search`: the architecture search. The loop (`loop.Search`), its settings (`config.SearchConfig`),
population, genetic operators (`ga`), path sampling, the size budget, the search's data split (`data_split`), the
fitness sources and their evaluators (`fitness_sources`, `evaluators`), the search's state (`checkpoint`), its
history rows and result (`search_records`), zero-cost proxies (`proxies`) and the final pick (`final_pick`). It
may import every lower layer (base, `space`, `data`, `train`, `runs`, `table`); `deploy`, `viz`, `notebooks`,
`headless` and `cli` may import it.

`Search` and `SearchConfig` load on first use (torch is imported then).
"""

from nasviz.lazy import lazy_exports

_EXPORTS = {"Search": "loop", "SearchConfig": "config", "PRESETS": "config"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
