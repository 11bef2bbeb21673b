"""Reliability and safety: one writer per folder (a second writer refused, fresh folders never shared) and batch
folders."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import reliability_support as shared
from reliability_support import (
    CLI_SETTINGS,
    DEADLINE_S,
    REPO,
    assert_resumes_to_the_reference,
    cli_search_args,
    run_cli,
    start_search,
    tiny,
    wait_for,
)

from nasviz.errors import CheckpointError, NasvizError
from nasviz.runs import rundir
from nasviz.runs.rundir import load_history
from nasviz.search.loop import Search

# the shared fixtures (`reliability_support`) this file's tests use
reference = shared.reference


# --- 5. one writer per run directory (issue 16.1) ------------------------------------------------------------
def busy_message(pid: int) -> str:
    return f"is in use by another nasviz process (pid {pid}"


def busy_pattern(pid: int) -> str:
    return re.escape(busy_message(pid))


def test_a_second_writer_is_refused_naming_the_first_and_kill_9_leaves_no_stale_lock(tmp_path, reference, capsys):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    wait_for(lambda: (run_dir / rundir.CHECKPOINT).exists(), proc, "the first checkpoint")
    assert proc.poll() is None, "the search finished before a second writer could try"
    # a new search into the same folder and a resume of it, from the command line and from Python
    for argv in (cli_search_args(run_dir), ["search", "--resume", str(run_dir), "--quiet"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and busy_message(proc.pid) in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(CheckpointError, match=busy_pattern(proc.pid)) as info:
        Search.resume(run_dir)
    assert info.value.pid == proc.pid
    with pytest.raises(CheckpointError, match=busy_pattern(proc.pid)):
        Search(tiny(), run_dir)
    proc.kill()  # the kernel drops the lock of a process killed with SIGKILL
    assert proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    proc.stderr.close()
    assert_resumes_to_the_reference(run_dir, reference)  # no stale lock: the resume runs, to the same end


def test_two_searches_started_together_into_one_folder_one_writes_the_other_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "nasviz", *cli_search_args(run_dir)[:-1]], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=DEADLINE_S), p.stderr.read()) for p in procs)
    for p in procs:
        p.stderr.close()
    (ok, _), (refused, err) = outcomes
    assert (ok, refused) == (0, 2), outcomes
    assert "is in use by another nasviz process (pid" in err and len(err.strip().splitlines()) == 1, err
    assert [r["generation"] for r in load_history(run_dir)] == list(range(CLI_SETTINGS["generations"] + 1))


CLAIM = ("import sys; from nasviz.notebooks import {fn}; print('CLAIMED', {fn}(sys.argv[1]), flush=True); "
         "sys.stdin.read()")  # hold the claim until told to let go


def claimed(proc: subprocess.Popen) -> Path:
    """The folder a CLAIM process got (the lines before it say why `out` was not used)."""
    for line in proc.stdout:
        if line.startswith("CLAIMED "):
            return Path(line.removeprefix("CLAIMED ").strip())
    raise AssertionError(f"no folder claimed: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.parametrize("fn", ["fresh_run_dir", "fresh_folder"])
def test_notebooks_asking_for_a_fresh_folder_at_once_get_one_each(tmp_path, fn):
    """The batch case `-p out SHARED --jobs N`: each process claims (creates and locks) a different folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM.format(fn=fn), str(tmp_path / "shared")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        folders = [claimed(p) for p in procs]
    finally:
        for p in procs:
            p.communicate("", timeout=DEADLINE_S)
    assert len(set(folders)) == 3 and all(f.is_dir() and f.parent == tmp_path for f in folders), folders
    assert tmp_path / "shared" in folders


def test_a_fresh_folder_is_never_one_another_process_writes_or_one_holding_files(tmp_path, capsys):
    from nasviz import notebooks as nv

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", CLAIM.format(fn="fresh_run_dir"), str(tmp_path / "busy")],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert claimed(holder) == tmp_path / "busy"
        elsewhere = nv.fresh_run_dir(tmp_path / "busy")
        assert elsewhere != tmp_path / "busy" and f"is in use by another process (pid {holder.pid})" in \
            capsys.readouterr().out
    finally:
        holder.communicate("", timeout=DEADLINE_S)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    assert nv.fresh_run_dir(tmp_path / "mine") != tmp_path / "mine"
    assert (tmp_path / "mine" / "config.json").read_text() == "{}"
    with pytest.raises(NasvizError, match="is blank"):
        nv.fresh_folder("  ")


def test_in_one_process_the_newest_search_writes_and_an_older_one_is_refused(tmp_path):
    run_dir = tmp_path / "r"
    first = Search(tiny(), run_dir)
    first.step()  # warm-up and generation 0
    first.close()  # lets go of the lock ...
    first.step()  # ... and takes it again to write: no one else wrote in between
    assert first.generation == 1
    second = Search.resume(run_dir)  # takes over
    with pytest.raises(CheckpointError, match="another search wrote .* after this one"):
        first.step()
    assert second.run()["finished"]
    assert [r["generation"] for r in load_history(run_dir)] == [0, 1, 2]


# --- 6. batch folders (16.2) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("values, expected", [
    (["a/b", "a_b", "a b"], ["name=a_b~", "name=a_b", "name=a_b~"]),
    (["A", "a"], ["name=A", "name=a-2"]),  # one folder on a file system that ignores case
    (["x" * 300, "x" * 301], ["name=" + "x" * 100, "name=" + "x" * 100]),  # cut to a file system's length
])
def test_batch_point_folders_are_unique_even_where_names_clash(values, expected):
    from nasviz.headless.batch import MAX_NAME, point_names

    names = point_names([{"name": v} for v in values])
    assert len({n.casefold() for n in names}) == len(values)
    assert all(n.startswith(e) and len(n.encode()) <= MAX_NAME for n, e in zip(names, expected)), names


@pytest.mark.slow
def test_a_batch_whose_values_clash_after_sanitising_keeps_every_point(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('name = "x"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(name)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = tmp_path / "echo.ipynb"
    nbformat.write(nb, str(notebook))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nasviz", "batch", str(notebook), "--grid", "name=a/b,a_b,a b",
                           "--out", str(tmp_path / "sweep"), "--jobs", "2"], capture_output=True, text=True, env=env,
                          timeout=DEADLINE_S * 2, cwd=tmp_path)
    assert done.returncode == 0 and "3 ok, 0 failed" in done.stdout, done.stdout + done.stderr
    summary = json.loads((tmp_path / "sweep" / rundir.BATCH).read_text())
    assert sorted(p["parameters"]["name"] for p in summary["points"]) == ["a b", "a/b", "a_b"]
    assert len({p["folder"] for p in summary["points"]}) == 3
    for point in summary["points"]:  # batch.json points at the folder that holds that point's results
        folder = Path(point["folder"])
        assert json.loads((folder / rundir.PARAMETERS).read_text())["name"] == point["parameters"]["name"]
        executed = nbformat.read(str(folder / "echo.ipynb"), as_version=4)
        assert executed.cells[-1].outputs[0]["text"].strip() == point["parameters"]["name"]
