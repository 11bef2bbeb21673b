"""Visualisation of nasviz searches: plotly figures, cell drawings, the live dashboard, replay and reports.

Names are imported lazily, so `import nasviz.viz.cells` (as the search CLI does) does not load ipywidgets.

    from nasviz.viz import Dashboard, Replay, write_report, show_cells
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "fitness_figure": "figures",
    "parents_offspring_figure": "figures",
    "before_after_figure": "figures",
    "op_frequency_figure": "figures",
    "training_curves_figure": "figures",
    "diversity_figure": "figures",
    "fitness_vs_params_figure": "figures",
    "fitness_vs_flops_figure": "figures",
    "all_figures": "figures",
    "FIGURES": "figures",
    "front_figure": "front",
    "front_points": "front",
    "cell_dot": "cells",
    "cells_dot": "cells",
    "render": "cells",
    "write_cells": "cells",
    "show_cells": "cells",
    "cell_figure": "cells",
    "GraphvizMissing": "cells",
    "Dashboard": "dashboard",
    "Replay": "replay",
    "ExplorableFigure": "explorer",
    "WarmupView": "warmup_view",
    "write_report": "report",
    "show_static": "report",
    "rows_so_far": "partial",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"nasviz.viz.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'nasviz.viz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
