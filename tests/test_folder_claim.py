"""The one folder-claiming routine (`nasviz.folder_claim`) and the lock bugs it fixes: a refused claim leaves no
lock file, a lock file alone never makes a user's files a run's leftovers, a failed writer leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasviz import dirlock, rundir
from nasviz.config import SearchConfig
from nasviz.errors import CheckpointError, ConfigError
from nasviz.folder_claim import claim_folder
from nasviz.notebooks.session import fresh_run_dir
from nasviz.space import get_space
from nasviz.table.build import build
from nasviz.table.recipe import Recipe

LOCK = dirlock.LOCK_FILE


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_refused_notebook_claim_leaves_no_lock_and_a_later_search_keeps_the_users_config(tmp_path):
    exp1 = tmp_path / "exp1"
    exp1.mkdir()
    (exp1 / "config.json").write_text('{"mine": true}')
    taken = fresh_run_dir(exp1)
    try:
        assert taken != exp1 and taken.name.startswith("exp1-")
        assert snapshot(exp1) == {"config.json": b'{"mine": true}'}  # no .nasviz.lock left behind
        with pytest.raises(CheckpointError, match="is not empty"):
            rundir.start_new(exp1)
        assert snapshot(exp1) == {"config.json": b'{"mine": true}'}
    finally:
        dirlock.held(taken).release()


@pytest.mark.parametrize("user_file, content", [
    ("config.json", '{"mine": true}'),
    ("config.json", "not json at all"),
    ("events.jsonl", '{"step": 1}\n'),
])
def test_a_stale_lock_file_does_not_make_user_files_a_runs_leftovers(tmp_path, user_file, content):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / LOCK).write_text('{"pid": 1, "command": "some other tool"}\n')
    (folder / user_file).write_text(content)
    before = snapshot(folder)
    with pytest.raises(CheckpointError, match="is not empty"):
        rundir.start_new(folder)
    assert snapshot(folder) == before


def test_a_stopped_runs_own_leftovers_are_still_replaced(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).write_text("")
    (folder / "config.json").write_text(json.dumps(SearchConfig.from_preset("smoke").to_dict()))
    (folder / "events.jsonl").write_text('{"type": "phase", "name": "warmup"}\n')
    lock = rundir.start_new(folder)
    try:
        assert sorted(p.name for p in folder.iterdir()) == [LOCK]
    finally:
        lock.release()


def test_a_failing_writer_removes_the_folders_it_made(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    with pytest.raises(RuntimeError), claim_folder(target):
        assert (target / LOCK).exists()
        raise RuntimeError("the writer failed")
    assert list(tmp_path.iterdir()) == []


def test_a_claim_refused_by_its_check_leaves_an_existing_folder_as_it_was(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")

    def refuse(folder: Path, locked_before: bool) -> None:
        assert not locked_before and (folder / LOCK).exists()  # checked under the lock
        raise ConfigError("not yours")

    with pytest.raises(ConfigError), claim_folder(tmp_path, check=refuse):
        pass
    assert snapshot(tmp_path) == {"notes.txt": b"mine"}
    assert dirlock.held(tmp_path) is None


def test_a_finished_claim_removes_its_lock_file_and_a_kept_one_stays_held(tmp_path):
    with claim_folder(tmp_path / "done") as claim:
        (claim.folder / "out.txt").write_text("x")
    assert snapshot(tmp_path / "done") == {"out.txt": b"x"}
    with claim_folder(tmp_path / "kept") as claim:
        lock = claim.keep()
    assert lock.held and (tmp_path / "kept" / LOCK).exists()
    lock.release()


def test_a_claim_refuses_a_file_and_a_busy_folder_names_the_holder(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(CheckpointError, match="exists and is not a folder"), claim_folder(tmp_path / "f"):
        pass
    assert (tmp_path / "f").read_text() == "mine"


def test_a_table_build_into_a_users_folder_is_refused_and_leaves_nothing(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt"):
        build(get_space("mini"), Recipe(), tmp_path, data=object())
    assert snapshot(tmp_path) == {"notes.txt": b"mine"}
