"""Nothing waits for ever: a FIFO (or another non-regular file) where a run file, a build folder's rows or a model
file should be is refused in one line, never read (each command runs as a subprocess with a timeout, so a hang
fails the test instead of stalling it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_support import table_smoke_run

from nasviz.runs import rundir

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600
"""Far beyond a refusal (a few seconds idle, over two minutes on a machine loaded 7x); only a hang reaches it."""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return table_smoke_run(tmp_path_factory.mktemp("fifo") / "run")


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def nasviz(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, cwd=ROOT)


def fifo_in_place_of(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def assert_refused(result: subprocess.CompletedProcess, path: Path) -> None:
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, result.stderr
    assert str(path) in err and "FIFO" in err and "not a regular file" in err, err


@pytest.mark.parametrize("name, argv", [
    (rundir.HISTORY, ["search", "--resume", "{run}", "--quiet"]),
    (rundir.RESULT, ["report", "{run}"]),
    (rundir.RESULT, ["info", "--genotype", "{run}"]),
    (rundir.CHECKPOINT, ["search", "--resume", "{run}", "--quiet"]),
])
def test_a_fifo_run_file_is_refused_in_one_line(run_copy, name, argv):
    fifo = fifo_in_place_of(run_copy / name)
    assert_refused(nasviz(*[a.replace("{run}", str(run_copy)) for a in argv]), fifo)
    assert (run_copy / name).is_fifo()  # left as it was


def test_a_fifo_rows_file_of_a_build_folder_is_refused(tmp_path):
    (tmp_path / "recipe.json").write_text(json.dumps({"space": "mini", "recipe": {}, "pilot": None}))
    fifo = fifo_in_place_of(tmp_path / "rows-0-of-1.jsonl")
    assert_refused(nasviz("table", "info", str(tmp_path)), fifo)


def test_a_fifo_model_file_is_refused(tmp_path):
    fifo = fifo_in_place_of(tmp_path / "model.pt")
    assert_refused(nasviz("export", "--model", str(fifo), "--format", "torchscript", "--out", str(tmp_path / "m.pt")),
                   fifo)


def test_a_fifo_lock_file_is_refused(run_copy):
    fifo = fifo_in_place_of(run_copy / ".nasviz.lock")
    result = nasviz("search", "--resume", str(run_copy), "--quiet")
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "not a regular file" in err, result.stderr
    assert str(fifo) in err
