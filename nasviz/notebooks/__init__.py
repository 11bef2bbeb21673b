"""What the notebooks in `notebooks/` call (`from nasviz import notebooks as nv`), so that their cells stay
short: the logic lives here, not in cells.

- `params`: parameters as papermill hands them over (JSON text for dicts and lists), checked.
- `session`: set-up, live or static output (`use_live`), fresh run folders, progress lines, config tables.
- `tables`: plain-HTML tables that survive papermill and the HTML export.
- `lessons`: the search-space and supernet lessons (operations, space size, paths, weight sharing).
- `runs`: a run's files, and reading a folder of runs to compare them side by side.
- `experiments`: from-scratch results, ablation variants, Kendall tau of fitness vs accuracy.
- `seeds`: comparisons over several seeds (mean ± sd, error bars) and the precomputed methods comparison.
- `sizes`: the size-budget lesson (a limit from a run's sizes, the fronts of runs with and without it).
- `latency`: the latency lesson (operations slow for their FLOPs, FLOPs vs measured latency, a latency limit).
- `searches`: many searches whose fitness is the ground-truth table (`repeat_searches`, loaded on first use:
  it imports the search).

Running the notebooks headless (`demo`, `batch`) is `nasviz.headless`. At module level only the standard library
and nasviz's light modules are imported: plotly, torch and scipy are imported inside the functions that use them.
"""

from nasviz.analysis import kendall
from nasviz.lazy import lazy_exports
from nasviz.notebooks.cpu_share import use_threads
from nasviz.notebooks.evidence import fitness_images_figure, load_evidence, regret_figure, regret_table, tau_figure
from nasviz.notebooks.experiments import (
    ABLATIONS,
    ablation_config,
    ablation_table,
    best_table,
    mean_accuracy,
    rank_figure,
    scratch_figure,
    scratch_table,
    spread_sample,
    train_over_seeds,
)
from nasviz.notebooks.latency import latency_figure, latency_limit, op_costs, op_costs_table, with_latency
from nasviz.notebooks.lessons import (
    genotype_table,
    inherited_fitness,
    operations_table,
    path_statistics,
    path_table,
    shared_edges,
    space_size_table,
    weight_sharing_check,
)
from nasviz.notebooks.params import as_dict, as_int, as_list, as_runtime, as_seeds
from nasviz.notebooks.runs import (
    comparable_runs,
    compare_figure,
    final_best_figure,
    final_best_table,
    final_values,
    find_runs,
    has_truth,
    run_files,
    runs_table,
    select_runs,
    show_json,
)
from nasviz.notebooks.seeds import (
    by_method,
    methods_figure,
    methods_table,
    precomputed_methods,
    spread,
    spread_figure,
    spread_table,
)
from nasviz.notebooks.session import (
    HEADLESS_ENV,
    clickable,
    config_table,
    describe_search,
    fresh_folder,
    fresh_run_dir,
    generation_summary,
    headless,
    holds_run,
    print_progress,
    result_summary,
    setup,
    use_live,
    widget_fallback,
)
from nasviz.notebooks.sizes import fronts_figure, fronts_table, size_limit
from nasviz.notebooks.tables import display_html, html_table

__all__ = [
    "fitness_images_figure",
    "load_evidence",
    "regret_figure",
    "regret_table",
    "tau_figure",
    "HEADLESS_ENV",
    "setup",
    "use_threads",
    "as_dict",
    "as_list",
    "as_int",
    "as_runtime",
    "as_seeds",
    "headless",
    "use_live",
    "widget_fallback",
    "clickable",
    "holds_run",
    "fresh_run_dir",
    "fresh_folder",
    "print_progress",
    "config_table",
    "describe_search",
    "generation_summary",
    "result_summary",
    "display_html",
    "html_table",
    "operations_table",
    "space_size_table",
    "path_table",
    "genotype_table",
    "shared_edges",
    "weight_sharing_check",
    "path_statistics",
    "inherited_fitness",
    "run_files",
    "show_json",
    "find_runs",
    "select_runs",
    "comparable_runs",
    "runs_table",
    "compare_figure",
    "final_best_figure",
    "final_best_table",
    "final_values",
    "has_truth",
    "scratch_table",
    "scratch_figure",
    "train_over_seeds",
    "mean_accuracy",
    "spread",
    "spread_figure",
    "spread_table",
    "precomputed_methods",
    "by_method",
    "methods_figure",
    "methods_table",
    "ABLATIONS",
    "ablation_table",
    "best_table",
    "ablation_config",
    "spread_sample",
    "kendall",
    "rank_figure",
    "size_limit",
    "fronts_figure",
    "fronts_table",
    "op_costs",
    "op_costs_table",
    "latency_figure",
    "with_latency",
    "latency_limit",
    "best_so_far",
    "repeat_searches",
]

__getattr__ = lazy_exports(__name__, {"best_so_far": "searches", "repeat_searches": "searches"})
