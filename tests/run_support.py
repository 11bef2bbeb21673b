"""Test helpers: a finished search without training (smoke preset, fitness from the shipped mini table; seconds,
for the tests that need real run files), a command run in-process with its exit code and error output, and SIGINT
for a process that a test stops with Ctrl-C."""

from __future__ import annotations

import signal
from pathlib import Path

from nasviz.cli import main
from nasviz.search import Search
from nasviz.search.config import SearchConfig


def table_smoke_run(run_dir: Path, **settings) -> Path:
    """Run a smoke search with table fitness into the new folder `run_dir`; returns it."""
    config = SearchConfig.from_preset("smoke", fitness="table", space="mini", **settings)
    Search(config, run_dir, progress=False).run()
    return run_dir


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """`python -m nasviz ARGV` in this process: its exit code and what it wrote to stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def ctrl_c_as_in_a_terminal() -> None:
    """`preexec_fn` of a process that a test stops with SIGINT: SIGINT as a terminal's foreground command has it.
    Where pytest runs in the background of a shell (`nohup ... &`), SIGINT is ignored and a child inherits that:
    Python then turns SIGINT into no KeyboardInterrupt (a background job is meant to survive Ctrl-C), and the
    process ran on."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
