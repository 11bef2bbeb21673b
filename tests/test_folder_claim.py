"""The one folder-claiming routine (`nasviz.runs.folder_claim`) and the lock bugs it fixes: a refused claim leaves no
lock file, a lock file alone never makes a user's files a run's leftovers, a failed writer leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasviz.errors import CheckpointError, ConfigError
from nasviz.notebooks.session import fresh_run_dir
from nasviz.runs import dirlock, rundir
from nasviz.runs.folder_claim import claim_folder
from nasviz.search.config import SearchConfig
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


@pytest.fixture
def fake_training(monkeypatch):
    """`train` with its data and training replaced (what is tested is what it leaves behind, not the training)."""
    from types import SimpleNamespace

    import nasviz.data.loading
    import nasviz.train.scratch

    data = SimpleNamespace(name="fake", train_labels=[0] * 256)
    monkeypatch.setattr(nasviz.data.loading, "load_dataset", lambda *a, **k: data)

    def train(genotype, data, config, progress, on_model):
        on_model(object())
        return {"test_accuracy": 0.5, "test_images": 10, "params": 1, "flops": 1}

    monkeypatch.setattr(nasviz.train.scratch, "train_from_scratch", train)


@pytest.mark.parametrize("failing", ["model", "train.json"])
def test_a_failed_train_leaves_neither_file_and_the_rerun_is_accepted(fake_training, monkeypatch, tmp_path, capsys,
                                                                      failing):
    import nasviz.deploy.model_file
    from nasviz.cli import main

    def save_model(path, *_args):
        if failing == "model":
            raise OSError(28, "No space left on device")
        Path(path).write_bytes(b"model")
        return Path(path)

    real_write_json = rundir.write_json

    def write_json(path, obj):
        if Path(path).name == rundir.SCRATCH:
            raise CheckpointError(f"cannot write {path}: No space left on device")
        real_write_json(path, obj)

    monkeypatch.setattr(nasviz.deploy.model_file, "save_model", save_model)
    monkeypatch.setattr(rundir, "write_json", write_json)
    out = tmp_path / "trained"
    argv = ["train", "--genotype", "DARTS_V2", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(argv) != 0
    assert not out.exists()  # the folder it made, with nothing in it, goes too
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    assert main([*argv[:-1], str(existing)]) != 0
    assert snapshot(existing) == {"notes.txt": b"mine"}
    monkeypatch.setattr(rundir, "write_json", real_write_json)
    monkeypatch.setattr(nasviz.deploy.model_file, "save_model",
                        lambda path, *_a: Path(path).write_bytes(b"m") and Path(path))
    assert main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "train.json"]
