"""Ground-truth tables: every network of a small search space trained from scratch, for looking up the truth.

`load(name)` gives a `Table`; `python -m nasviz table build|info|assemble` makes and inspects them
(see nasviz/table/build.py for how a table is built, recipe.py for how each network is trained).
"""

from nasviz.table.table import Entry, Table, TableError, available, ground_truth, load, read

__all__ = ["Entry", "Table", "TableError", "available", "ground_truth", "load", "read"]
