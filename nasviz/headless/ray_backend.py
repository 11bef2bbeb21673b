"""`nasviz batch --backend ray`: each grid point is a Ray task that runs the notebook with papermill in a subprocess,
in a scratch folder of the node it lands on, and sends the executed notebook and the run's files back as bytes; the
driver writes them under --out exactly as the local backend does. No shared file system is needed.

Ray is the optional extra `ray` (`pip install 'nasviz[ray]'`); it is imported only here, and only when used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nasviz.cores import usable_cores
from nasviz.errors import ConfigError, NasvizError
from nasviz.headless.execute import execute, one_line

WAIT_S = 1.0  # how often the driver's wait loop wakes up (Ctrl-C is noticed between waits)
CANCEL_GRACE_S = 20.0  # how long cancelled runs get to stop their kernels before Ray is shut down
EXIT_DEADLINE_S = 60.0  # after a Ctrl-C the driver ends within this long, even if Ray's shutdown hangs
CONNECT_TIMEOUT_S = 10.0  # for the first look at --address
LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_worker_register_timeout_seconds": "300"}


def check_options(args: argparse.Namespace) -> None:
    """The Ray options that can be checked without Ray (before it is imported or started): --cpus-per-run >= 1, and
    for a local instance at most this machine's CPUs."""
    if args.cpus_per_run is not None and args.cpus_per_run < 1:
        raise ConfigError(f"--cpus-per-run {args.cpus_per_run} is out of range; allowed: an integer >= 1")
    local = local_cpus()
    if args.address is None and (args.cpus_per_run or 1) > local:
        raise ConfigError(f"--cpus-per-run {args.cpus_per_run} is more than this machine's {local} CPU(s), which a "
                          f"local Ray instance has; allowed: --cpus-per-run 1..{local}, or --address of a Ray "
                          "cluster with larger nodes")


def local_cpus() -> int:
    """CPUs a local Ray instance offers: those this process may run on."""
    return usable_cores()


class RayBackend:
    """A connection to Ray for one batch: made before any folder is written (so a missing Ray, an unreachable
    cluster or a --cpus-per-run no node can give is a one-line error that leaves nothing behind)."""

    def __init__(self, args: argparse.Namespace):
        check_options(args)
        try:
            import ray
        except ImportError:
            raise ConfigError("--backend ray needs Ray, which is not installed; install the extra: "
                              "pip install 'nasviz[ray]'") from None
        self.address: str | None = args.address
        self.cpus: int = args.cpus_per_run or 1
        self.jobs: int | None = args.jobs
        self.temp = _connect(self.address)  # a local instance's folder (sockets, logs), removed at the end
        nodes = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        if self.cpus > max(nodes, default=0):
            self._stop()
            raise ConfigError(f"--cpus-per-run {self.cpus} is more than any Ray node has (CPUs per node: "
                              f"{', '.join(map(str, nodes)) or 'none'})")
        self.total = sum(nodes)

    def run(self, notebook: Path, points: list[dict], out: Path, finished: Callable[[str, dict], None]) -> None:
        """Run every point as a Ray task (at most --jobs at a time if given), write each point's files into its
        folder as soon as they are back, then call `finished(name, outcome)`. Ctrl-C cancels the tasks still
        pending or running and re-raises; the points already written stay complete. Ray is shut down (or left,
        for a cluster) at the end."""

        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        print(f"batch: {len(points)} run(s) of {notebook.name} on {where} ({self.total} CPU(s), {self.cpus} per "
              f"run), into {out}", flush=True)
        with _deadline_after_ctrl_c(EXIT_DEADLINE_S):
            try:
                self._run_tasks(notebook, points, finished)
            finally:
                self._stop()

    def _run_tasks(self, notebook: Path, points: list[dict], finished: Callable[[str, dict], None]) -> None:
        """Submit the points, keep at most --jobs in flight, and write each one back as it finishes; on Ctrl-C,
        cancel the rest (their papermill processes stop) and re-raise."""
        import ray

        source = ray.put(notebook.read_bytes())
        task = ray.remote(_remote_point).options(num_cpus=self.cpus, max_retries=0)
        cwd = os.getcwd()
        queue = list(points)
        pending: dict[Any, dict] = {}
        try:
            while queue or pending:
                while queue and (self.jobs is None or len(pending) < self.jobs):
                    point = queue.pop(0)
                    ref = task.remote(str(notebook.resolve()), source, point["name"], point["parameters"],
                                      str(point["folder"].resolve()), cwd, self.cpus)
                    pending[ref] = point
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    point = pending.pop(ref)
                    try:
                        outcome, files = ray.get(ref)
                    except Exception as exc:  # the worker died, the node was lost, ...
                        outcome, files = _failed(exc), []
                    with _WRITING, _interrupt_deferred():
                        _write_files(point["folder"], files)
                    finished(point["name"], outcome)
        except KeyboardInterrupt:  # the exit deadline runs since the Ctrl-C (`_deadline_after_ctrl_c`)
            for ref in pending:
                ray.cancel(ref)  # a running task gets a KeyboardInterrupt and stops its papermill subprocess
            ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_GRACE_S)
            raise

    def _stop(self) -> None:
        """Stop a local instance and remove its folder; from a cluster, only disconnect."""
        import ray

        ray.shutdown()
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)


_WRITING = threading.Lock()
"""Held while a point's files are written: the exit deadline waits for it, so every folder written stays whole."""


@contextmanager
def _deadline_after_ctrl_c(seconds: float) -> Iterator[None]:
    """While the block runs, a Ctrl-C starts `_exit_if_stuck(seconds)` at once, also where the main thread is
    blocked inside Ray and Python cannot raise its KeyboardInterrupt yet: Python's own signal handler writes the
    signal's number to a wakeup socket (`signal.set_wakeup_fd`), which a thread of this module watches."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        started = False
        with reader:
            while data := reader.recv(64):  # until `writer` closes
                if signal.SIGINT in data and not started:
                    _exit_if_stuck(seconds)
                    started = True

    threading.Thread(target=watch, name="nasviz-ctrl-c-deadline", daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        writer.close()  # the watching thread's recv returns b"" and it ends


def _exit_if_stuck(seconds: float) -> None:
    """After a Ctrl-C: if the driver is still here in `seconds` (Ray's cancel or shutdown stuck), end it as an
    interrupted command ends (one line, exit 130); the points already written are complete (a point being
    written is finished first)."""
    def end() -> None:
        with _WRITING:
            print("nasviz: interrupted", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(130)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def _connect(address: str | None) -> str | None:
    """Join the cluster at `address`, or start a small local instance: all this machine's CPUs, no dashboard, logs
    in a temporary folder (returned), no usage reporting, and (a busy machine starts Python slowly) 5 minutes for
    a worker to register instead of Ray's 1. Any failure is a one-line NasvizError."""
    import logging

    import ray

    if address is not None:
        _check_reachable(address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, ... depending on what is there
            raise NasvizError(f"--address {address}: cannot join a Ray cluster there ({one_line(exc)})") from None
        return None
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)  # read by the Ray processes started now
    temp = tempfile.mkdtemp(prefix="nasviz-ray-")  # short: Ray's socket paths live under it
    cpus = local_cpus()
    try:
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, _temp_dir=temp)
    except Exception as exc:  # Ray raises bare Exceptions when its processes do not come up
        raise NasvizError(f"could not start a local Ray instance ({one_line(exc)}); its logs are in {temp}; "
                          "or start one with `ray start --head` and pass --address") from None
    return temp


def _check_reachable(address: str) -> None:
    """A one-line NasvizError at once if nothing listens at a HOST:PORT address (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", ray://...: Ray's own resolution
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise NasvizError(f"--address {address}: no Ray cluster answers there ({one_line(exc)}); start one with "
                          "`ray start --head --port PORT` on that machine") from None


def _failed(exc: BaseException) -> dict:
    cause = getattr(exc, "cause", None) or exc  # Ray wraps the task's exception
    return {"status": "failed", "error": f"{type(cause).__name__}: {one_line(cause)}", "seconds": None}


def _write_files(folder: Path, files: list[tuple[str, bytes]]) -> None:
    """Write a point's files (paths relative to its folder) under `folder`."""
    root = folder.resolve()
    for relative, data in files:
        target = (root / relative).resolve()
        if root not in target.parents:
            raise ValueError(f"a run sent back {relative!r}, which is outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block ends (so a point's folder is written whole), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


# ---- on the worker --------------------------------------------------------------------------------------------


def _remote_point(notebook: str, source: bytes, name: str, parameters: dict, folder: str, cwd: str,
                  threads: int) -> tuple[dict, list[tuple[str, bytes]]]:
    """One grid point, inside a Ray task: papermill in a subprocess, in a scratch folder laid out as the driver's
    point folder; returns the outcome and the folder's files (paths relative to it, contents). `notebook` and
    `folder` are the driver's paths: parameters that name `folder` (the `out` parameter) are pointed at the scratch
    folder, and the executed notebook and the error name the driver's paths again, as a local run would."""
    notebook_name = Path(notebook).name
    scratch = Path(tempfile.mkdtemp(prefix="nasviz-point-"))
    try:
        local = scratch / name
        local.mkdir()
        source_path = scratch / notebook_name
        source_path.write_bytes(source)
        parameters = {k: _moved(v, folder, str(local)) for k, v in parameters.items()}
        spec = {"notebook": str(source_path), "output": str(local / notebook_name), "parameters": parameters}
        (scratch / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        outcome = _subprocess([sys.executable, "-m", "nasviz.headless.ray_backend", str(scratch / "spec.json")],
                              cwd=cwd if os.path.isdir(cwd) else str(scratch), env=env)
        if outcome["error"]:
            outcome["error"] = outcome["error"].replace(str(local), folder)
        files = []
        for path in sorted(local.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                if path.name == notebook_name and path.parent == local:
                    data = data.replace(_json_text(str(local)), _json_text(folder))
                    data = data.replace(_json_text(str(source_path)), _json_text(notebook))
                files.append((path.relative_to(local).as_posix(), data))
        return outcome, files
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _moved(value: Any, old: str, new: str) -> Any:
    """A parameter value that names `old` or a path under it, renamed to `new`; any other value unchanged."""
    if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
        return new + value[len(old):]
    return value


def _json_text(text: str) -> bytes:
    """`text` as it appears inside a JSON string (nbformat writes UTF-8, not \\u escapes)."""
    return json.dumps(text, ensure_ascii=False)[1:-1].encode()


def _subprocess(command: list[str], cwd: str, env: dict[str, str]) -> dict:
    """Run the papermill subprocess to its end and read its outcome; on a KeyboardInterrupt (ray.cancel) stop it
    with SIGINT (papermill then shuts its kernel down), SIGKILL if it does not stop, and re-raise."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = _wait(proc)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=CANCEL_GRACE_S / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        log.seek(0)
        lines = log.read().decode(errors="replace").strip().splitlines()
    if code == 0 and lines:
        try:
            return json.loads(lines[-1])
        except ValueError:
            pass
    tail = lines[-1] if lines else "no output"
    return {"status": "failed", "error": f"papermill process exited with code {code}: {one_line(tail)}",
            "seconds": None}


def _wait(proc: subprocess.Popen) -> int:
    """`proc`'s exit code, waiting in short steps: ray.cancel interrupts a task as a signal that Python handles
    between bytecodes (it sends no real signal), which a plain `proc.wait()` (one blocking waitpid) never reaches,
    so a cancelled point ran on until the driver gave up waiting."""
    while True:
        try:
            return proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            continue


def _main(spec_path: str) -> int:
    """The subprocess: one papermill run described by a spec file; prints its outcome as the last line."""
    spec = json.loads(Path(spec_path).read_text())
    outcome = execute(Path(spec["notebook"]), Path(spec["output"]), spec["parameters"])
    print(json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
