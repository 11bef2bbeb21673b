"""What a search writes into its run directory (config.json, events.jsonl, history.jsonl, checkpoint.pt and
result.json; without a run directory, nothing). The recorder only writes: the rows, the result and the checkpoint
come from the search (`nasviz.search.search_records`, `nasviz.search.checkpoint`)."""

from __future__ import annotations

import sys
import uuid
import weakref
from pathlib import Path
from typing import Any

from nasviz.errors import CheckpointError
from nasviz.runs import dirlock, rundir
from nasviz.runs.events import Event


class Recorder:
    """The writer of one run directory (`run_dir` None: a search that writes nothing).

    A new run's folder is checked when the recorder is made and created by `start`, so a search that fails
    while it sets up leaves nothing behind; a resumed run's folder must exist. From `start` to `close` the
    recorder holds the run directory's lock (`nasviz.runs.dirlock`): one writer per run directory. After `close`, a
    later write takes the lock again, unless another search wrote there meanwhile."""

    def __init__(self, run_dir: str | Path | None, *, resuming: bool = False) -> None:
        self.resuming = resuming
        self.run_dir: Path | None = None
        if run_dir is not None:
            self.run_dir = rundir.check_existing(run_dir) if resuming else rundir.check_new(run_dir)
        self._events: rundir.JsonlAppender | None = None
        self._token = object()  # who this writer is, for the run directory's lock
        self._lock: dirlock.FolderLock | None = None
        self._mark: tuple | None = None  # the run's files as this recorder left them (see `rundir.fingerprint`)
        self.events_logged = 0
        self.run_id = uuid.uuid4().hex
        """The run's identity (a resumed run keeps its own): in every checkpoint and result.json."""
        """Lines in events.jsonl (a checkpoint records it, so a resume drops the events logged after it)."""

    def start(self, config: dict[str, Any], generation: int, result: dict[str, Any] | None = None,
              events: int | None = None) -> None:
        """Lock the run directory (creating a new run's), then write config.json (and, when given, result.json:
        a resumed run's files then agree); when resuming, first drop what the last checkpoint does not cover
        (temporary files, history rows after `generation`, event lines after the first `events`)."""
        if self.run_dir is None:
            return
        try:
            repairs: list[str] = []
            if self.resuming:
                self._take(rundir.lock(self.run_dir))
                rundir.check_no_links(self.run_dir)
                rundir.remove_temporaries(self.run_dir)
                repairs = rundir.repairs_on_resume(self.run_dir, generation)
                rundir.keep_history(self.run_dir, generation)
                self.events_logged = rundir.keep_events(self.run_dir, events)
            else:
                self._take(rundir.start_new(self.run_dir))
            rundir.write_json(self.run_dir / rundir.CONFIG, config)
            if result is not None:
                rundir.write_json(self.run_dir / rundir.RESULT, result)
        except BaseException:
            self.close()
            raise
        self._mark = rundir.fingerprint(self.run_dir)
        for repair in repairs:  # repaired, and said: never silently
            print(f"nasviz: note: {repair}", file=sys.stderr, flush=True)

    def _take(self, lock: dirlock.FolderLock) -> None:
        lock.adopt(self._token)
        self._lock = lock
        weakref.finalize(self, lock.release_by, self._token)  # a search dropped without close() lets go too

    def _writable(self) -> Path:
        """The run directory, once this recorder is its writer; CheckpointError if another writer took over."""
        assert self.run_dir is not None
        if self._lock is not None and self._lock.owned_by(self._token):
            return self.run_dir
        lock = rundir.lock(self.run_dir)
        if lock.owner is not None or rundir.fingerprint(self.run_dir) != self._mark:
            lock.release_if_unowned()
            raise CheckpointError(f"another search wrote {self.run_dir} after this one; this one no longer writes "
                                  "there (resume the run to continue it)")
        self._take(lock)
        return self.run_dir

    def event(self, event: Event) -> None:
        """Append the event to events.jsonl (opened at the first event, until `close`)."""
        if self.run_dir is None:
            return
        run_dir = self._writable()
        if self._events is None:
            self._events = rundir.JsonlAppender(run_dir / rundir.EVENTS)
        self._events(event.to_json())
        self.events_logged += 1

    def generation(self, row: dict[str, Any]) -> None:
        """Append a generation's row to history.jsonl."""
        if self.run_dir is not None:
            rundir.append_jsonl(self._writable() / rundir.HISTORY, row)
            self._mark = rundir.fingerprint(self.run_dir)

    def checkpoint(self, state: dict[str, Any], result: dict[str, Any]) -> None:
        """Write checkpoint.pt, then result.json (each atomically)."""
        if self.run_dir is not None:
            run_dir = self._writable()
            rundir.save_checkpoint(run_dir / rundir.CHECKPOINT, state)
            rundir.write_json(run_dir / rundir.RESULT, result)
            self._mark = rundir.fingerprint(run_dir)

    @property
    def last_checkpoint(self) -> Path | None:
        """The checkpoint a failed search can be resumed from, if there is one."""
        path = self.run_dir / rundir.CHECKPOINT if self.run_dir is not None else None
        return path if path is not None and path.exists() else None

    def close(self) -> None:
        """Close events.jsonl and let go of the run directory's lock (a later write takes both again)."""
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._lock is not None:
            self._lock.release_by(self._token)
            self._lock = None
