"""Running the notebooks headless with papermill: `python -m nasviz demo` and `python -m nasviz batch`.

- `execute`: a notebook's parameters, one papermill run, the HTML export.
- `demo`: the main notebook with the quick preset into runs/demo/ (the README's first command).
- `batch`: one papermill run per point of a parameter grid, in a process pool (`run_batch` from Python).

At module level only the standard library and nasviz's light modules are imported (no torch, no papermill): the
CLI imports this package to add its commands.
"""

from nasviz.headless.batch import add_batch_command, run_batch
from nasviz.headless.demo import add_demo_command

COMMANDS = (add_demo_command, add_batch_command)
"""`f(subparsers)` functions that add the headless commands to the CLI."""

__all__ = ["COMMANDS", "add_batch_command", "add_demo_command", "run_batch"]
