"""`python -m nasviz batch --backend ray`: one Ray task per grid point, the executed notebook and the run's files sent
back to the driver. On a real Ray instance (one `ray start --head` for this module, joined with --address) a 2-point
smoke sweep writes the same folders and batch.json as the local backend, up to timings; a failing point is reported
and the other completes; without Ray, `--backend ray` is a one-line error naming the extra."""

from __future__ import annotations

import _thread
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch
from run_support import ctrl_c_as_in_a_terminal

from nasviz.cli import main
from nasviz.headless.ray_backend import LOCAL_ENV
from nasviz.runs.dirlock import LOCK_FILE

REPO = Path(__file__).resolve().parent.parent
MAIN = REPO / "notebooks" / "03_search.ipynb"
TINY = {"warmup_steps": 4, "population": 3, "generations": 1, "finetune_steps": 4, "fitness_images": 64,
        "weight_images": 256, "batch_size": 16, "eval_batch_size": 64, "top_k": 2}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NO_RAY = "Ray is not installed (pip install 'nasviz[ray]'; `make install` installs it)"
HEAD_START_S = 300  # a loaded 2-core machine needs a while to start Ray's processes

# What differs between two runs of the same point: timings, timestamps, and the random ids plotly gives its <div>s
# and papermill gives the cells it adds.
TIMINGS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "TIME"),
    (re.compile(r'((?:duration|wall_time_s|seconds)(?:"|&quot;): )[-0-9.e]+'), r"\1N"),
    (re.compile(r"(wall time \(s\)</th><td>)[0-9.]+"), r"\1N"),
    (re.compile(r"\b\d+(\.\d+)? s\b"), "N s"),
    (re.compile(r'"id": "[0-9a-f]{8}"'), '"id": "ID"'),
    (re.compile(r"\b[0-9a-f]{32}\b"), "RUNID"),  # a run's run_id (result.json, and the notebook's summary)
]


TIMING_KEYS = {"wall_time_s", "search_wall_time_s", "seconds", "duration", "run_id"}
"""Keys whose values differ between two runs of the same search (timings, and each run's random id)."""


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasviz", "batch", *args], capture_output=True, text=True,
                          env={**os.environ, **ONE_THREAD}, timeout=900)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address():
    """A one-node Ray cluster for this module (`ray start --head --block`, 2 CPUs, stopped with SIGTERM)."""
    pytest.importorskip("ray", reason=NO_RAY)
    temp = tempfile.mkdtemp(prefix="nasviz-ray-")  # short: Ray's socket paths live under it
    port = free_port()
    log_path = Path(temp) / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
             "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={temp}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ONE_THREAD, **LOCAL_ENV},
            start_new_session=True)
    try:
        deadline = time.monotonic() + HEAD_START_S
        while "Ray runtime started" not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops every process it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, ray_address):
    """The same 2-point sweep (one point fails at once: an unknown method) with both backends."""
    root = tmp_path_factory.mktemp("sweeps")
    args = [str(MAIN), "--grid", "method=sft-ga,nosuch", "-p", "preset", "smoke", "-p", "overrides", json.dumps(TINY)]
    local = batch(*args, "--out", str(root / "local"), "--jobs", "2")
    ray = batch(*args, "--out", str(root / "ray"), "--backend", "ray", "--address", ray_address,
                "--cpus-per-run", "1")
    return root, local, ray


def normalised(path: Path, out: Path) -> str:
    """The file's text with `out` named OUT and timings, timestamps and random ids replaced; in a notebook,
    consecutive stream outputs joined (how a kernel's prints are split into messages depends on timing)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        notebook = json.loads(text)
        for cell in notebook["cells"]:
            joined: list[dict] = []
            for output in cell.get("outputs", []):
                if output["output_type"] == "stream":  # one string, stored split into lines or not
                    output = {**output, "text": "".join(output["text"])}
                previous = joined[-1] if joined else {}
                if output["output_type"] == previous.get("output_type") == "stream" and \
                        output["name"] == previous["name"]:
                    previous["text"] += output["text"]
                else:
                    joined.append(output)
            if "outputs" in cell:
                cell["outputs"] = joined
        text = json.dumps(notebook, indent=1, ensure_ascii=False)
    text = text.replace(str(out.resolve()), "OUT")
    for pattern, replacement in TIMINGS:
        text = pattern.sub(replacement, text)
    return text


def same_objects(a, b) -> bool:
    """Equal tensors (dtype and values) and equal everything else, timings and run ids aside."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(
            k in TIMING_KEYS or same_objects(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_objects(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_ray_sweep_writes_what_the_local_backend_writes(sweeps):
    root, local, ray = sweeps
    log = (local.stdout + local.stderr)[-3000:] + (ray.stdout + ray.stderr)[-3000:]
    assert local.returncode == 1 and ray.returncode == 1, log  # one point failed in each
    a, b = root / "local", root / "ray"
    def written(folder: Path) -> list[Path]:  # lock files hold the writer's pid: there, but not compared
        return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and p.name != LOCK_FILE)

    files = written(a)
    assert files == written(b), log
    assert Path("method=sft-ga/run/result.json") in files and Path("method=nosuch/03_search.ipynb") in files

    for rel in files:
        if rel.suffix == ".pt":  # the supernet, GA state and RNG states: identical
            assert same_objects(torch.load(a / rel, weights_only=True), torch.load(b / rel, weights_only=True)), rel
        elif rel.name == "batch.json":
            continue
        else:
            assert normalised(a / rel, a) == normalised(b / rel, b), rel
    assert not any("nasviz-point-" in (b / rel).read_bytes().decode(errors="replace") for rel in files)

    summaries = [json.loads((folder / "batch.json").read_text()) for folder in (a, b)]
    assert [s["backend"] for s in summaries] == ["local", "ray"]
    for s, folder in zip(summaries, (a, b)):
        for key in ("backend", "jobs", "seconds"):
            del s[key]
        for point in s["points"]:
            del point["seconds"]
        s["points"] = json.loads(json.dumps(s["points"]).replace(str(folder), "OUT"))
    assert summaries[0] == summaries[1]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_ray_reports_the_failing_point_and_completes_the_other(sweeps):
    root, _local, ray = sweeps
    out = root / "ray"
    assert "on the Ray cluster at 127.0.0.1:" in ray.stdout
    assert "method=nosuch  failed" in ray.stdout and "1 ok, 1 failed" in ray.stdout, ray.stdout[-3000:]
    status = {p["name"]: p for p in json.loads((out / "batch.json").read_text())["points"]}
    assert status["method=sft-ga"]["status"] == "ok" and status["method=sft-ga"]["error"] is None
    assert status["method=nosuch"]["status"] == "failed"
    assert "ConfigError" in status["method=nosuch"]["error"] and "nosuch" in status["method=nosuch"]["error"]
    result = json.loads((out / "method=sft-ga" / "run" / "result.json").read_text())
    assert result["finished"] and result["method"] == "sft-ga" and result["generation"] == 1
    parameters = json.loads((out / "method=sft-ga" / "parameters.json").read_text())
    assert parameters["out"] == str((out / "method=sft-ga" / "run").resolve())  # the driver's folder, as locally


def test_cpus_per_run_no_node_has_is_one_line_before_anything_is_written(ray_address, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["batch", str(MAIN), "--grid", "seed=0,1", "--out", str(out), "--backend", "ray",
                 "--address", ray_address, "--cpus-per-run", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--cpus-per-run 64 is more than any Ray node has (CPUs per node: 2)" in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_an_address_where_no_cluster_answers_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray", reason=NO_RAY)
    out = tmp_path / "never"
    address = f"127.0.0.1:{free_port()}"
    assert main(["batch", str(MAIN), "--grid", "seed=0,1", "--out", str(out), "--backend", "ray",
                 "--address", address]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nasviz: error: --address {address}: no Ray cluster answers there") and \
        "ray start --head" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    out = tmp_path / "never"
    assert main(["batch", str(MAIN), "--grid", "seed=0,1", "--out", str(out), "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("nasviz: error: --backend ray needs Ray, which is not installed; install the extra: "
                   "pip install 'nasviz[ray]'")
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--address", "127.0.0.1:6379"], "--address is for --backend ray only"),
    (["--cpus-per-run", "2"], "--cpus-per-run is for --backend ray only"),
    (["--backend", "ray", "--cpus-per-run", "0"], "--cpus-per-run 0 is out of range; allowed: an integer >= 1"),
])
def test_ray_options_are_checked_before_anything_runs(tmp_path, capsys, args, message):
    if "ray" in args:
        pytest.importorskip("ray", reason=NO_RAY)
    out = tmp_path / "never"
    assert main(["batch", str(MAIN), "--grid", "seed=0,1", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_backend_must_be_local_or_ray(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(MAIN), "--grid", "seed=1", "--backend", "dask", "--out", "x"])
    assert exc.value.code == 2
    assert "invalid choice: 'dask'" in capsys.readouterr().err


def sleepy_notebook(path: Path) -> Path:
    """A notebook that sleeps `delay` seconds, after writing its kernel's PID to `pid_file` if it sleeps at all."""
    import nbformat

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    notebook.cells = [
        nbformat.v4.new_code_cell("delay = 0\npid_file = ''", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os, time\nif delay:\n    open(pid_file, 'w').write(str(os.getpid()))\n"
                                  "time.sleep(delay)"),
    ]
    nbformat.write(notebook, str(path))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_cancels_the_running_point_and_keeps_the_finished_one(ray_address, tmp_path):
    notebook = sleepy_notebook(tmp_path / "sleepy.ipynb")
    pid_file = tmp_path / "kernel.pid"
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasviz", "batch", str(notebook), "--grid", "delay=0,600", "-p", "pid_file",
         str(pid_file), "--out", str(out), "--backend", "ray", "--address", ray_address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ONE_THREAD},
        start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        for line in proc.stdout:  # the quick point finishes while the other sleeps
            if line.startswith("[1/2]"):
                break
        deadline = time.monotonic() + 300
        while not (pid_file.exists() and pid_file.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.5)
        kernel = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and stderr.strip().endswith("nasviz: interrupted"), stderr
    assert line.strip() == "[1/2] delay=0: ok (" + line.split("(")[1].strip(), line
    assert sorted(p.name for p in (out / "delay=0").iterdir()) == ["parameters.json", "sleepy.ipynb"]
    assert "papermill" in json.loads((out / "delay=0" / "sleepy.ipynb").read_text())["metadata"]
    assert sorted(p.name for p in (out / "delay=600").iterdir()) == ["parameters.json"]
    assert not (out / "batch.json").exists()  # as with the local backend: an interrupted batch has no summary
    deadline = time.monotonic() + 60
    while alive(kernel):  # the cancelled task stopped its papermill process, which shut its kernel down
        assert time.monotonic() < deadline, f"kernel {kernel} still runs after Ctrl-C"
        time.sleep(0.5)


def test_a_driver_stuck_inside_a_c_call_at_ctrl_c_still_ends_as_interrupted():
    """Where the driver's main thread is blocked in C code when Ctrl-C comes (inside Ray, where Python cannot raise
    KeyboardInterrupt), the exit deadline still starts: here the main thread reads an empty pipe in C, the read
    restarted after each signal (SA_RESTART), so Python's handler never runs."""
    code = ("import ctypes, os, signal\nfrom nasviz.headless.ray_backend import _deadline_after_ctrl_c\n"
            "signal.siginterrupt(signal.SIGINT, False)\nempty, keep = os.pipe()\n"
            "with _deadline_after_ctrl_c(0.5):\n    print('ready', flush=True)\n"
            "    ctypes.CDLL(None).read(empty, ctypes.create_string_buffer(1), 1)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=ctrl_c_as_in_a_terminal)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and stderr.strip() == "nasviz: interrupted", stderr


def test_a_cancelled_point_stops_its_papermill_process_at_once(tmp_path):
    """ray.cancel interrupts a running task as `_thread.interrupt_main` does (no real signal is sent): the task's wait
    for its papermill process notices within a second, stops the process (SIGINT) and re-raises. A plain
    `proc.wait()` noticed only when the process ended by itself (here after 60 s)."""
    from nasviz.headless.ray_backend import _subprocess

    # interrupt_main acts only where Python handles SIGINT, which a pytest started by `nohup ... &` does not
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            _subprocess([sys.executable, "-c", "import time; time.sleep(60)"], cwd=str(tmp_path), env=dict(os.environ))
        assert time.monotonic() - start < 15
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_driver_stuck_after_ctrl_c_still_ends_as_interrupted():
    """Ray's cancel or shutdown can hang after a Ctrl-C: the driver then ends on its own, one line, exit 130."""
    code = ("import threading\nfrom nasviz.headless.ray_backend import _exit_if_stuck\n"
            "_exit_if_stuck(0.5)\nthreading.Event().wait()  # stuck, as in a hung ray.shutdown()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130 and proc.stderr.strip() == "nasviz: interrupted", proc.stderr
