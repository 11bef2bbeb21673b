"""nasviz.runs.rundir as the one owner of a run directory's layout: recognising runs, reading them, fresh folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasviz.errors import CheckpointError, ConfigError
from nasviz.runs import rundir
from nasviz.space.genotypes import FIXTURES


def write_run(folder: Path, best: str | None = str(FIXTURES["DARTS_V2"])) -> Path:
    """A run directory as a search leaves it after generation 0 (files written by rundir's own writers)."""
    folder.mkdir(parents=True, exist_ok=True)
    rundir.write_json(folder / rundir.CONFIG, {"seed": 3})
    rundir.write_json(folder / rundir.RESULT, {"best_genotype": best, "finished": False})
    rundir.append_jsonl(folder / rundir.HISTORY, {"generation": 0, "best": {"genotype": best, "fitness": 0.5}})
    return folder


def test_a_run_directory_is_recognised_by_any_of_its_state_files(tmp_path):
    assert not rundir.is_run_dir(tmp_path) and not rundir.is_run_dir(tmp_path / "missing")
    for name in rundir.MARKERS:
        folder = tmp_path / name.replace(".", "-")
        folder.mkdir()
        (folder / name).write_text("")
        assert rundir.is_run_dir(folder), name
    (tmp_path / "config-only").mkdir()
    rundir.write_json(tmp_path / "config-only" / rundir.CONFIG, {})
    assert not rundir.is_run_dir(tmp_path / "config-only")  # settings alone are not a run
    assert not rundir.is_run_dir("x" * 5000)  # longer than a path may be: not a run, no OSError


def test_readers_of_a_run(tmp_path):
    run = write_run(tmp_path / "run")
    assert rundir.load_history(run) == [{"generation": 0, "best": {"genotype": str(FIXTURES["DARTS_V2"]),
                                                                    "fitness": 0.5}}]
    assert rundir.load_result(run)["finished"] is False and rundir.load_config(run) == {"seed": 3}
    assert rundir.best_genotype(run) == FIXTURES["DARTS_V2"]
    assert rundir.genotype_from(str(run)) == rundir.genotype_from("DARTS_V2") == FIXTURES["DARTS_V2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert rundir.load_history(empty) == [] and rundir.load_result(empty) is None
    (empty / rundir.RESULT).write_text('{"torn')  # a run still being written: no result yet
    assert rundir.load_result(empty) is None
    with pytest.raises(ConfigError, match="has no best genotype yet"):
        rundir.best_genotype(write_run(tmp_path / "young", best=None))


def test_find_run_dirs_and_batch_parameters(tmp_path):
    runs = [write_run(tmp_path / "a"), write_run(tmp_path / "sweep" / "seed=1" / rundir.RUN_SUBDIR)]
    (tmp_path / "sweep" / "seed=1" / rundir.PARAMETERS).write_text(json.dumps({"seed": 1}))
    (tmp_path / "notes").mkdir()
    assert rundir.find_run_dirs(tmp_path) == sorted(runs)
    assert rundir.load_parameters(runs[1]) == {"seed": 1} and rundir.load_parameters(runs[0]) is None


def test_a_new_run_never_goes_where_a_run_or_a_file_is(tmp_path):
    assert rundir.check_new(tmp_path / "new") == tmp_path / "new" and not (tmp_path / "new").exists()
    run = write_run(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    for where, fragment in ((run, "already holds a search run"), (tmp_path / "file", "exists and is not a"),
                            (tmp_path / "file" / "run", "is not a directory")):
        with pytest.raises(CheckpointError, match=fragment) as info:
            rundir.create(where)
        assert info.value.setting == "out" and "--" not in str(info.value)  # the CLI names its own option
    with pytest.raises(CheckpointError, match="does not exist") as info:
        rundir.load_search_state(tmp_path / "missing")
    assert info.value.setting == "resume"


def test_fresh_sibling_never_returns_an_existing_path(tmp_path):
    first = rundir.fresh_sibling(tmp_path / "out", "20260101-000000")
    assert first == tmp_path / "out-20260101-000000"
    first.mkdir()
    second = rundir.fresh_sibling(tmp_path / "out", "20260101-000000")
    assert second == tmp_path / "out-20260101-000000-2" and not second.exists()
    assert rundir.fresh_sibling(tmp_path / "out").name.startswith("out-2")  # stamped with the time by default


def test_keep_history_drops_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    run = write_run(tmp_path / "run")
    for g in (1, 2):
        rundir.append_jsonl(run / rundir.HISTORY, {"generation": g})
    with (run / rundir.HISTORY).open("a") as f:
        f.write('{"generation": 3')
    rundir.keep_history(run, 1)
    assert [r["generation"] for r in rundir.load_history(run)] == [0, 1]
