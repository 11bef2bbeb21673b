"""Writers never follow a symbolic link out of the folder they write: the report's `figures`, a run file, a batch
point folder. A link is refused in one line (nothing written through it) or replaced by a real file, never
written through."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from run_support import run_cli, table_smoke_run

from nasviz.cli import EXIT_USAGE
from nasviz.runs import rundir

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished smoke search with table fitness (no training: seconds)."""
    return table_smoke_run(tmp_path_factory.mktemp("links") / "run")


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


run = run_cli


def test_report_refuses_a_figures_link_out_of_the_run_directory(run_copy, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.html").write_text("mine")
    (run_copy / rundir.FIGURES).symlink_to(elsewhere)
    code, err = run(["report", str(run_copy)], capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "symbolic link" in err, err
    assert str(run_copy / rundir.FIGURES) in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.html"]
    assert not (run_copy / rundir.REPORT).exists()


def test_report_replaces_a_linked_run_file_without_writing_through_it(run_copy, tmp_path, capsys):
    outside = tmp_path / "outside.html"
    outside.write_text("mine")
    (run_copy / rundir.REPORT).symlink_to(outside)
    (run_copy / "best_normal.svg").symlink_to(outside)
    code, err = run(["report", str(run_copy)], capsys)
    assert code == 0, err
    assert outside.read_text() == "mine"
    assert not (run_copy / rundir.REPORT).is_symlink() and (run_copy / rundir.REPORT).stat().st_size > 0


def test_resume_refuses_a_linked_history(run_copy, tmp_path, capsys):
    outside = tmp_path / "history-elsewhere.jsonl"
    shutil.move(run_copy / rundir.HISTORY, outside)
    (run_copy / rundir.HISTORY).symlink_to(outside)
    before = outside.read_bytes()
    code, err = run(["search", "--resume", str(run_copy), "--set", "generations=3", "--override", "--quiet"], capsys)
    assert code == EXIT_USAGE and "symbolic link" in err and len(err.strip().splitlines()) == 1, err
    assert outside.read_bytes() == before


def test_batch_refuses_a_linked_point_folder(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "seed=0").symlink_to(elsewhere)
    code, err = run(["batch", str(ROOT / "notebooks" / "03_search.ipynb"), "--grid", "seed=0,1", "--out", str(out)],
                    capsys)
    assert code == EXIT_USAGE and "symbolic link" in err, err
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in out.iterdir()) == ["seed=0"]
