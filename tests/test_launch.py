"""`python -m nasviz search --nproc-per-node N`: a search on N processes that nasviz starts itself, ending as one
process does (issue 26): a user's error is one line and exit 2 (checked before any process starts where it can be,
else printed once for all of them), Ctrl-C stops every process at the next checkpoint with exit 130 (a second one
now), and no launcher traceback or log line is shown. Real processes (gloo on the CPU), one thread each."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed_support import TINY
from run_support import ctrl_c_as_in_a_terminal

from nasviz.headless import launch
from nasviz.runs import rundir

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600
SETS = [a for k, v in TINY.items() if k not in ("generations", "warmup_steps") for a in ("--set", f"{k}={v}")]
"""The tiny search of tests/distributed_support.py, its length given by each test."""


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "LOCAL_RANK")}
    return {**clean, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def nasviz(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=TIMEOUT)


def only_line(result: subprocess.CompletedProcess, code: int, fragment: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == code, result.stderr
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "ChildFailedError" not in err, result.stderr
    assert fragment in err, err
    return err


# --- checked before any process starts ------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["--set", "generations=-3"], "generations=-3 is out of range; allowed: an integer in 0..1000000"),
    (["--set", "batch_size=15"], "batch_size=15 does not split evenly across 2 processes; allowed: a multiple of 2"),
    (["--device", "cuda:1"], "device='cuda:1' names one GPU for all 2 processes"),
    (["--nproc-per-node", "0"], "--nproc-per-node 0 is out of range; allowed: an integer in 1..256"),
    (["--nproc-per-node", "100000"], "--nproc-per-node 100000 is out of range"),
    (["--set", "population=2", "--set", "population=3"], "conflict; allowed: each setting once"),
])
def test_a_settings_mistake_is_one_line_and_exit_2_before_any_process_starts(tmp_path, argv, fragment):
    args = ["search", "--preset", "smoke", "--out", "run", *argv]
    if "--nproc-per-node" not in argv:
        args += ["--nproc-per-node", "2"]
    only_line(nasviz(*args, cwd=tmp_path), 2, fragment)
    assert sorted(tmp_path.iterdir()) == []


def test_a_folder_that_holds_a_users_files_is_refused_before_any_process_starts(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    only_line(nasviz("search", "--nproc-per-node", "2", "--out", "run", cwd=tmp_path), 2, "is not empty")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]


def test_a_resume_of_a_folder_without_a_checkpoint_is_refused_before_any_process_starts(tmp_path):
    (tmp_path / "run").mkdir()
    only_line(nasviz("search", "--nproc-per-node", "2", "--resume", "run", cwd=tmp_path), 2, "no checkpoint at")


def test_nproc_per_node_under_torchrun_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nasviz", "search", "--nproc-per-node", "2", "--out", "run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                            env={**env(), "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"})
    assert "in a process that torchrun (or nasviz) started already" in result.stderr
    assert result.returncode == 2 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("codes, interrupted, expected", [
    ({0: 0, 1: 0}, False, 0),
    ({0: 2, 1: 2}, False, 2),
    ({0: -15, 1: 2}, False, 2),  # rank 1 failed first; the launcher stopped rank 0 before it exited
    ({0: 130, 1: 130}, False, 130),
    ({0: -2, 1: -15}, True, 130),
    ({0: 1, 1: -15}, False, 1),
    ({0: 0, 1: 0}, True, 130),
])
def test_the_exit_code_is_the_one_a_single_process_gives(codes, interrupted, expected):
    assert launch.exit_code(codes, interrupted) == expected


def test_the_error_line_is_rank_0s_else_the_first_process_that_wrote_one():
    assert launch._error_line({0: "nasviz: error: a", 1: "nasviz: error: b"}) == "nasviz: error: a"
    assert launch._error_line({0: "Signal 15 (SIGTERM) received by PID 1", 1: "nasviz: error: b"}) == "nasviz: error: b"
    assert launch._error_line({0: {"message": "nasviz: interrupted"}}) == "nasviz: interrupted"
    assert launch._error_line({0: "To enable traceback see: ..."}) is None


# --- found by the processes -------------------------------------------------------------------------------------
def one_class_folder(tmp_path: Path) -> Path:
    """An image folder with one class: an error that each process finds when it loads the data."""
    from PIL import Image

    folder = tmp_path / "one-class" / "cat"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("L", (8, 8), color=10 * i).save(folder / f"{i}.png")
    return folder.parent


def test_an_error_found_by_the_processes_is_printed_once_and_exits_2(tmp_path):
    result = nasviz("search", "--nproc-per-node", "2", "--dataset", f"imagefolder:{one_class_folder(tmp_path)}",
                    "--preset", "smoke", *SETS, "--set", "generations=1", "--set", "warmup_steps=4", "--out", "run",
                    cwd=tmp_path)
    only_line(result, 2, "at least 2 classes are needed")
    assert not (tmp_path / "run").exists()


def test_a_resume_on_another_number_of_processes_is_one_line_from_the_processes(tmp_path):
    done = nasviz("search", "--preset", "smoke", *SETS, "--set", "generations=0", "--set", "warmup_steps=2", "--out",
                  "run", "--quiet",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    before = (tmp_path / "run" / rundir.RESULT).read_bytes()
    result = nasviz("search", "--nproc-per-node", "2", "--resume", "run", "--quiet", cwd=tmp_path)
    only_line(result, 2, "ran on 1 process(es), and this resume has 2")
    assert (tmp_path / "run" / rundir.RESULT).read_bytes() == before


@pytest.mark.slow
def test_a_search_on_2_launched_processes_finishes_quietly_and_records_2_processes(tmp_path):
    result = nasviz("search", "--nproc-per-node", "2", "--preset", "smoke", *SETS, "--set", "generations=1", "--set",
                    "warmup_steps=4", "--out", "run", "--quiet", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    assert json.loads((tmp_path / "run" / rundir.RESULT).read_text())["processes"] == 2
    assert sum("search finished" in line for line in result.stdout.splitlines()) == 0  # --quiet: no summary



ABORTING_TEARDOWN = """import atexit, os
if "LOCAL_RANK" in os.environ:  # a launched process, not the launcher
    import torch.distributed as dist
    dist.destroy_process_group = lambda *a, **k: os.abort()
    atexit.register(os.abort)
"""
"""A sitecustomize that makes PyTorch's teardown abort in each launched process, as it did in CI ('terminate called
without an active exception', SIGABRT in rank 1 after the search): destroying the group, or Python's exit, kills
the process."""


@pytest.mark.parametrize("case", ["finished", "error"])
def test_a_process_ends_without_pytorchs_teardown_so_an_abort_there_changes_nothing(tmp_path, case):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(ABORTING_TEARDOWN)
    data = []
    if case == "error":  # found by the processes themselves (the launcher cannot check images): printed once
        data = ["--dataset", f"imagefolder:{one_class_folder(tmp_path)}"]
    result = subprocess.run([sys.executable, "-m", "nasviz", "search", "--nproc-per-node", "2", *data, "--preset",
                             "smoke", *SETS, "--set", "generations=1", "--set", "warmup_steps=4", "--out", "run",
                             "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
                            env={**env(), "PYTHONPATH": f"{site}{os.pathsep}{ROOT}"})
    if case == "finished":
        assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
        assert json.loads((tmp_path / "run" / rundir.RESULT).read_text())["processes"] == 2
    else:
        only_line(result, 2, "at least 2 classes are needed")

# --- Ctrl-C ---------------------------------------------------------------------------------------------------------
def start(tmp_path: Path, *extra: str, environment: dict[str, str] | None = None) -> subprocess.Popen:
    given = {e.split("=")[0] for e in extra if "=" in e}
    sets = [a for k, v in zip(SETS[1::2], SETS[1::2], strict=True) if k.split("=")[0] not in given
            for a in ("--set", v)]
    return subprocess.Popen([sys.executable, "-m", "nasviz", "search", "--nproc-per-node", "2", "--preset", "smoke",
                             *sets, "--set", "generations=50", "--set", "warmup_steps=400", *extra, "--out", "run"],
                            cwd=tmp_path, env=environment or env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,  # as a terminal's Ctrl-C: SIGINT to the launcher only
                            preexec_fn=ctrl_c_as_in_a_terminal)


def wait_for_checkpoint(proc: subprocess.Popen, run: Path, kind: str = "checkpoint") -> None:
    """Until the run's events.jsonl records an event of `kind` (the search runs on both processes)."""
    deadline = time.monotonic() + TIMEOUT
    while not any(r.get("type") == kind for r in rundir.read_jsonl(run / rundir.EVENTS)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "timeout"
        time.sleep(0.2)


def read_until(proc: subprocess.Popen, text: str) -> str:
    """What the launcher wrote on stderr, read until it holds `text` (progress bars end no line)."""
    seen = ""
    while text not in seen:
        chunk = os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        assert chunk, seen
        seen += chunk
    return seen


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_stops_every_process_at_the_next_checkpoint_with_exit_130_and_it_resumes(tmp_path):
    proc = start(tmp_path)
    wait_for_checkpoint(proc, tmp_path / "run")
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "ChildFailedError" not in err and "torch.distributed" not in err, err
    ours = re.findall(r"nasviz: [^\r\n\x1b]*", err)  # progress bars share its line
    assert ours == ["nasviz: stopping after the next checkpoint (Ctrl-C again to quit now)"], err
    assert out.count("search stopped (resume with --resume)") == 1, out
    state = rundir.load_checkpoint(tmp_path / "run" / rundir.CHECKPOINT)
    assert state["processes"] == 2 and state["generation"] == -1
    assert not any(p.name.endswith(rundir.TMP_SUFFIX) for p in (tmp_path / "run").iterdir())


@pytest.mark.slow
def test_a_second_ctrl_c_stops_every_process_now_with_one_line_and_exit_130(tmp_path):
    proc = start(tmp_path, "--set", "checkpoint_every=300")  # the first Ctrl-C waits for step 300
    wait_for_checkpoint(proc, tmp_path / "run", "train_step")
    proc.send_signal(signal.SIGINT)
    seen = read_until(proc, "Ctrl-C again to quit now")
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, seen + err
    ours = re.findall(r"nasviz: [^\r\n\x1b]*", seen + err)
    assert ours == ["nasviz: stopping after the next checkpoint (Ctrl-C again to quit now)", "nasviz: interrupted"], err
    assert "Traceback" not in seen + err and "ChildFailedError" not in err
    assert not (tmp_path / "run" / rundir.CHECKPOINT).exists()  # stopped before its first checkpoint: none


SLOW_START = """import os, time
if "LOCAL_RANK" in os.environ:  # a launched process, still importing Python's site module
    open(os.path.join(os.environ["STARTING_DIR"], str(os.getpid())), "w").close()
    time.sleep(3)
"""
"""A sitecustomize that holds each launched process inside Python's start for 3 s (a SIGINT there is a "Fatal Python
error: init_import_site" and a traceback, as CI saw once), after saying so with a file named by its PID."""


def test_ctrl_c_while_pythons_of_the_processes_start_is_one_line_and_exit_130(tmp_path):
    site, starting = tmp_path / "site", tmp_path / "starting"
    site.mkdir()
    starting.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_START)
    proc = start(tmp_path, "--quiet", environment={**env(), "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
                                                   "STARTING_DIR": str(starting)})
    deadline = time.monotonic() + TIMEOUT
    while len(list(starting.iterdir())) < 2:  # both processes are inside Python's start
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130 and err.strip().splitlines() == ["nasviz: interrupted"], err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_while_the_processes_start_is_one_line_and_exit_130(tmp_path):
    proc = start(tmp_path, "--quiet")
    deadline = time.monotonic() + TIMEOUT
    import psutil

    while not psutil.Process(proc.pid).children():  # the launcher has started its processes
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["nasviz: interrupted"], err
