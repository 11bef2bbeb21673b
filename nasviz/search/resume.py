"""Opening a run to resume it (`Search.resume`): rank 0 locks the run directory (one writer), reads its checkpoint
and checks it (`nasviz.search.checkpoint.check_resumable`) and the settings changed for the resume, before any
file is touched; with several processes the others receive what rank 0 read and accepted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError
from nasviz.runs import rundir
from nasviz.search.checkpoint import check_resumable
from nasviz.search.config import SearchConfig
from nasviz.train.distributed import Ranks


@contextmanager
def resuming(run_dir: str | Path, overrides: dict[str, Any] | None, force: bool,
             ranks: Ranks) -> Iterator[tuple[SearchConfig, dict[str, Any]]]:
    """The resumed run's config and checkpoint, with the run directory locked; where the block (or the checks)
    fail, the lock is released unless the search already owns it."""
    held = None
    try:
        with ranks.agree():
            if ranks.main:
                held = rundir.lock(rundir.check_resumable(run_dir))  # one writer: refused while another writes
                state = rundir.load_search_state(run_dir)
                check_resumable(state, Path(run_dir), ranks.size, force)
                config = SearchConfig.resumed(state["config"], overrides, force)
                if config.generations < state["generation"]:
                    raise ConfigError(f"generations={config.generations} is fewer than the {state['generation']} "
                                      f"this run has done; allowed: generations >= {state['generation']}")
        if ranks.size > 1:  # the others receive what rank 0 read and accepted
            sent = ranks.broadcast_state({"state": state, "config": config.to_dict()} if ranks.main else None)
            state, config = sent["state"], SearchConfig.from_dict(sent["config"])
        yield config, state
    except BaseException:
        if held is not None:
            held.release_if_unowned()
        raise
