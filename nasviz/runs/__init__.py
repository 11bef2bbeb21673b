"""Layer `runs`: the run directory. Its file names, layout, readers and atomic writes (`rundir`), the folder
lock (`dirlock`), the history.jsonl row (`history_row.HistoryRow`, which the readers check), lineage (`lineage`),
the typed events a search emits (`events`) and the writer of a search's files (`recorder`). It
may import the base modules, `nasviz.space`, `nasviz.data` and `nasviz.train`; every front end reads runs through
it, never through the search.
"""

from nasviz.lazy import lazy_exports

_EXPORTS = dict.fromkeys(["best_genotype", "find_run_dirs", "is_run_dir", "load_config", "load_history",
                          "load_parameters", "load_result", "write_json"], "rundir")
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
