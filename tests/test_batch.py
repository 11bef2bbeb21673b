"""`python -m nasviz batch`: one papermill run per grid point, each in its own folder; failures are reported per
point without stopping the others; bad arguments are one-line errors (exit 2) before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nasviz.cli import main
from nasviz.headless.batch import parse_grid, parse_value, point_name

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "notebooks" / "03_search.ipynb"
COMPARE = REPO / "notebooks" / "06_compare_runs.ipynb"
TINY = {"warmup_steps": 4, "population": 3, "generations": 1, "finetune_steps": 4, "fitness_images": 64,
        "weight_images": 256, "batch_size": 16, "eval_batch_size": 64, "top_k": 2}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasviz", "batch", *args], capture_output=True, text=True,
                          env={**os.environ, **ONE_THREAD}, timeout=900)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_grid_runs_every_point_and_reports_the_failing_one(tmp_path):
    out = tmp_path / "sweep"
    proc = batch(str(MAIN), "--grid", "method=sft-ga,nosuch", "-p", "preset", "smoke", "-p", "overrides",
                 json.dumps(TINY), "--out", str(out), "--jobs", "2")
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 1, log  # one point failed

    ok, bad = out / "method=sft-ga", out / "method=nosuch"
    for folder in (ok, bad):
        assert (folder / "03_search.ipynb").is_file(), log
        parameters = json.loads((folder / "parameters.json").read_text())
        assert parameters["preset"] == "smoke" and parameters["overrides"] == TINY  # typed: a dict of ints
        assert parameters["live"] is False
        assert parameters["out"] == str((folder / "run").resolve())
    assert json.loads((ok / "parameters.json").read_text())["method"] == "sft-ga"

    result = json.loads((ok / "run" / "result.json").read_text())
    assert result["finished"] and result["method"] == "sft-ga" and result["generation"] == 1
    assert (ok / "run" / "report.html").is_file()

    summary = json.loads((out / "batch.json").read_text())
    assert summary["failed"] == 1 and summary["grid"] == {"method": ["sft-ga", "nosuch"]}
    status = {p["name"]: p for p in summary["points"]}
    assert status["method=sft-ga"]["status"] == "ok" and status["method=sft-ga"]["error"] is None
    assert status["method=nosuch"]["status"] == "failed"
    assert "ConfigError" in status["method=nosuch"]["error"] and "nosuch" in status["method=nosuch"]["error"]
    assert "method=nosuch  failed" in proc.stdout and "1 ok, 1 failed" in proc.stdout

    # 06_compare_runs reads the sweep: the run is named after its grid point
    compare = tmp_path / "compare"
    proc = batch(str(COMPARE), "--grid", "group_by=method", "-p", "runs_dir", str(out), "--out", str(compare))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    folder = compare / "group_by=method"
    assert "out" not in json.loads((folder / "parameters.json").read_text())  # 06 has no `out` parameter
    executed = (folder / "06_compare_runs.ipynb").read_text()
    assert f"1 run(s) under {out}" in executed and "method=sft-ga" in executed


def test_values_are_typed_as_json_where_possible():
    assert [parse_value(t) for t in ("3", "0.5", "true", "null", "smoke", "[1, 2]", '{"a": 1}', "1e-3")] == \
        [3, 0.5, True, None, "smoke", [1, 2], {"a": 1}, 0.001]
    grid = parse_grid(["seed=0,1,2", "method=sft-ga,random", "finetune=true,false"])
    assert grid["seed"] == [("0", 0), ("1", 1), ("2", 2)]
    assert grid["finetune"] == [("true", True), ("false", False)]
    assert point_name({"seed": "1", "dataset": "imagefolder:/data/x"}) == "seed=1,dataset=imagefolder__data_x"


@pytest.mark.parametrize("args, message", [
    (["notebooks/nope.ipynb", "--grid", "seed=1"], "notebook 'notebooks/nope.ipynb' does not exist"),
    ([str(MAIN), "--grid", "seed"], "--grid 'seed' is not KEY=V1,V2"),
    ([str(MAIN), "--grid", "seed=1,,2"], "has an empty value"),
    ([str(MAIN), "--grid", "=1,2"], "is not KEY=V1,V2"),
    ([str(MAIN), "--grid", "seed=1", "--grid", "seed=2"], "--grid seed is given twice"),
    ([str(MAIN), "--grid", "seed=1", "--jobs", "0"], "--jobs 0 is out of range"),
    ([str(MAIN), "--grid", "sed=1"], "no parameter 'sed' (did you mean 'seed'?)"),
    ([str(MAIN), "--grid", "seed=1", "-p", "seed", "2"], "given both in --grid and -p"),
    ([str(MAIN)], "at least one --grid"),
])
def test_bad_arguments_are_one_line_errors_before_anything_runs(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(REPO)
    out = tmp_path / "never"
    assert main(["batch", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_jobs_must_be_an_integer(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(MAIN), "--grid", "seed=1", "--jobs", "two", "--out", "x"])
    assert exc.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_finished_points_are_never_overwritten(tmp_path, capsys):
    out = tmp_path / "sweep"
    (out / "seed=1").mkdir(parents=True)
    (out / "seed=1" / "03_search.ipynb").write_text("{}")
    assert main(["batch", str(MAIN), "--grid", "seed=1,2", "--out", str(out)]) == 2
    assert "already holds results for 'seed=1'" in capsys.readouterr().err
    assert not (out / "seed=2").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_run_batch_from_python_in_any_folder_with_quiet_kernels(tmp_path, monkeypatch, capfd):
    """06_compare_runs starts a sweep from JupyterLab, whose working folder is notebooks/: the Python API finds
    the main notebook itself, and papermill's kernels (CurveZMQ-encrypted) print no TCP warning."""
    from nasviz.headless import run_batch

    for key, value in ONE_THREAD.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # not the repository root
    code = run_batch({"seed": [3]}, "sweep", {"preset": "smoke", "overrides": TINY})
    captured = capfd.readouterr()
    assert code == 0, captured.out[-3000:] + captured.err[-3000:]
    result = json.loads((tmp_path / "sweep" / "seed=3" / "run" / "result.json").read_text())
    assert result["seed"] == 3 and result["finished"]
    assert "[1/1] seed=3: ok" in captured.out
    assert "without encryption" not in captured.out + captured.err
