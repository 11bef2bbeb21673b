"""Claiming a folder to write in: the one "check, make, lock, check again, clean up" routine of every writer
(a search's run directory, a notebook's fresh folder, `train`, `batch`, `demo` and a table build's shard).

    with claim_folder(out, "run directory", check=refuse_unless_empty) as claim:
        ...  # write; claim.keep() hands the lock on to a longer-lived writer (a search)

`claim_folder` refuses a path that is not a folder, makes the folder (and its missing parents), takes the
folder's lock (`nasviz.dirlock`: another process is refused in one line naming it), then runs `check` under the
lock, so what was checked cannot change before the writer starts. If the check or the `with` body fails, what the
claim made goes again: the folders it created (when nothing but the lock file is in them) and the lock file it
made, so a folder that the claim did not make, or that it was refused, is left exactly as it was found. When the
body ends normally the lock is released and a lock file that the claim made is removed, unless `keep` handed the
lock on (a run directory keeps its lock file: see `rundir.start_new`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nasviz.errors import CheckpointError
from nasviz.runs import dirlock


@dataclass
class Claim:
    """A folder this process holds: `lock`; `created` the folders this claim made (outermost first)."""

    folder: Path
    lock: dirlock.FolderLock
    created: list[Path] = field(default_factory=list)
    locked_before: bool = False
    """The lock file was there before this claim (another nasviz process wrote the folder once)."""
    held_before: bool = False
    """This process held the lock already (the claim neither releases it nor removes its file)."""
    kept: bool = False

    def keep(self) -> dirlock.FolderLock:
        """Keep the lock held, and its file, after the `with` block (the caller releases it); returns it."""
        self.kept = True
        return self.lock


Check = Callable[[Path, bool], None]
"""`check(folder, locked_before)`: raise (a one-line error) if the folder may not be written."""


@contextlib.contextmanager
def claim_folder(folder: str | Path, what: str = "folder", *, check: Check | None = None,
                 lock_name: str = dirlock.LOCK_FILE, setting: str = "out") -> Iterator[Claim]:
    """Make (if needed), lock and `check` `folder` for writing; undo what was made if anything fails (see the
    module docstring). CheckpointError (with `setting`) for a path that is not a folder or cannot be made."""
    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise CheckpointError(f"{what} {folder} exists and is not a folder", setting=setting)
    created = [p for p in (*reversed(folder.parents), folder) if not p.exists() and not p.is_symlink()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created, None)
        raise CheckpointError(f"cannot create {what} {folder}: {exc.strerror or exc}", setting=setting) from None
    lock_file = folder / lock_name
    locked_before = lock_file.exists() or lock_file.is_symlink()
    held_before = dirlock.held(folder, lock_name) is not None
    try:
        lock = dirlock.acquire(folder, what, lock_name)
    except BaseException:
        _remove_empty(created, None)
        raise
    claim = Claim(folder, lock, created, locked_before, held_before)
    try:
        if check is not None:
            check(folder, locked_before)
        yield claim
    except BaseException:
        _let_go(claim)
        _remove_empty(created, lock_name)
        raise
    if not claim.kept:
        _let_go(claim)


def _let_go(claim: Claim) -> None:
    """Release the claim's lock (not one this process held before, nor one a writer adopted), removing the lock
    file first if the claim made it (so a process waiting on the old file takes the lock again on a new one)."""
    if claim.held_before or claim.lock.owner is not None:
        return
    if not claim.locked_before:
        with contextlib.suppress(OSError):
            os.unlink(claim.lock.path)
    claim.lock.release()


def _remove_empty(created: list[Path], lock_name: str | None) -> None:
    """Remove the folders a claim made, innermost first, while nothing (but a leftover lock file) is in them."""
    for folder in reversed(created):
        try:
            names = {entry.name for entry in folder.iterdir()}
            if lock_name is not None and names == {lock_name}:
                (folder / lock_name).unlink()
                names = set()
            if names:
                return
            folder.rmdir()
        except OSError:
            return
