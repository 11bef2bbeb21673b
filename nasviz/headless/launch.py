"""`python -m nasviz search --nproc-per-node N ...`: one search on N processes of this machine, started by nasviz
itself so that it ends as a one-process search does: one line for an error (exit 2 for a user's mistake), exit 130
for Ctrl-C, no launcher traceback.

The processes are started by PyTorch's elastic launcher (the one `torchrun` runs), called in this process
(`torch.distributed.launcher.api.launch_agent`, standalone rendezvous on localhost, no restarts), so each process
gets torchrun's environment and `nasviz.train.distributed` works unchanged. What this launcher does differently:

- the settings are checked here, before any process starts (a mistake is refused once, at once);
- each process writes its one error line into torchrun's error file instead of printing it
  (`NASVIZ_LAUNCHER`, read by `nasviz.options.report`), and this launcher prints one of them: rank 0's, or the
  first process's that wrote one (a process stopped by the launcher before it could print says nothing);
- the exit code is mapped back: 2 where a process exited 2 (a user's error), 130 after Ctrl-C, 1 otherwise;
- Ctrl-C is passed on to every process (each runs in a session of its own, so the terminal's SIGINT reaches only
  this one): the first stops them all at the next checkpoint, a second stops them now, as with one process;
- the elastic launcher's own log lines and its ChildFailedError traceback are not shown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator

from nasviz.cores import usable_cores
from nasviz.errors import ConfigError
from nasviz.options import EXIT_INTERRUPTED, EXIT_USAGE, LAUNCHER_ENV

MAX_PROCESSES = 256
"""Most processes per machine that --nproc-per-node accepts."""
READY_ENV = "NASVIZ_LAUNCHER_READY"
"""The folder where each process marks, with an empty file named by its PID, that its Python has started."""
CHILD = (f"import os, sys\ntry:\n    open(os.path.join(os.environ['{READY_ENV}'], str(os.getpid())), 'x').close()\n"
         "    import runpy\n    runpy.run_module('nasviz', run_name='__main__', alter_sys=True)\n"
         "except KeyboardInterrupt:\n    try:\n        from nasviz.options import record_error\n"
         "        record_error('nasviz: interrupted')\n    finally:\n        sys.exit(130)\n")
"""What each process runs: `python -m nasviz ARGV`, after marking itself started (`READY_ENV`), where a Ctrl-C
while Python loads nasviz (before its own handling starts) ends the process with 130 and no traceback (the
launcher prints the one line)."""
QUIET_LOGGERS = ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run")


def check_processes(nproc: int, batch_size: int | None = None, device: str | None = None) -> None:
    """ConfigError (one line) unless `nproc` processes can run this search: 1..MAX_PROCESSES, not inside a process
    that a launcher started already, a global `batch_size` that splits evenly, no one GPU named for all."""
    from nasviz.options import launched_rank

    if isinstance(nproc, bool) or not isinstance(nproc, int) or not 1 <= nproc <= MAX_PROCESSES:
        raise ConfigError(f"--nproc-per-node {nproc} is out of range; allowed: an integer in 1..{MAX_PROCESSES}")
    if nproc > 1 and launched_rank() is not None:
        raise ConfigError("--nproc-per-node in a process that torchrun (or nasviz) started already; allowed: one "
                          "launcher (leave out --nproc-per-node under torchrun)")
    if nproc > 1 and batch_size is not None and batch_size % nproc:
        raise ConfigError(f"batch_size={batch_size} does not split evenly across {nproc} processes; allowed: a "
                          f"multiple of {nproc}")
    if nproc > 1 and device is not None and device.startswith("cuda:"):
        raise ConfigError(f"device={device!r} names one GPU for all {nproc} processes; allowed: auto or cuda (each "
                          "process takes the GPU of its local rank)")


def run(argv: list[str], nproc: int) -> int:
    """Run `python -m nasviz ARGV` on `nproc` processes of this machine (see the module docstring); returns the
    exit code one process would have given."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, launch_agent

    interrupts: list[int] = []
    with _quiet_launcher(), tempfile.TemporaryDirectory(prefix="nasviz-launch-") as logs, \
            _environment(nproc, _ready(logs)), _passing_on_ctrl_c(interrupts, _ready(logs)):
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                              rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                              logs_specs=DefaultLogsSpecs(log_dir=logs),
                              signals_to_handle="SIGTERM,SIGHUP,SIGQUIT")  # SIGINT: `_passing_on_ctrl_c`
        try:
            launch_agent(config, sys.executable, ["-c", CHILD, *argv])
        except ChildFailedError as exc:
            codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
            line = _error_line({rank: failure.message for rank, failure in exc.failures.items()})
            code = exit_code(codes, interrupted=bool(interrupts))
            if line is None and code != EXIT_INTERRUPTED:
                rank, first = min(codes.items())
                line = (f"nasviz: error: process {rank} of {nproc} ended with "
                        f"{'signal ' + str(-first) if first < 0 else 'exit code ' + str(first)} (its output is above)")
            if line is None and code == EXIT_INTERRUPTED and not any(c == EXIT_INTERRUPTED for c in codes.values()):
                line = "nasviz: interrupted"
            if line is not None:
                print(line, file=sys.stderr, flush=True)
            return code
        except Exception as exc:  # the launcher itself failed (a rendezvous that cannot start, a signal)
            sig = getattr(exc, "sigval", None)
            if sig == signal.SIGINT:
                print("nasviz: interrupted", file=sys.stderr, flush=True)
                return EXIT_INTERRUPTED
            if sig is not None:
                print(f"nasviz: stopped by {signal.Signals(sig).name}", file=sys.stderr, flush=True)
                return 128 + int(sig)
            raise
    return EXIT_INTERRUPTED if interrupts else 0


def exit_code(codes: dict[int, int], interrupted: bool = False) -> int:
    """The exit code of a search whose processes exited with `codes` (rank -> code; a signal is negative): 2 where
    one exited 2 (a user's error: the others may have been stopped meanwhile), else 130 where one exited 130 or
    Ctrl-C was pressed, else 1 (0 where all exited 0)."""
    if all(code == 0 for code in codes.values()):
        return EXIT_INTERRUPTED if interrupted else 0
    if EXIT_USAGE in codes.values():
        return EXIT_USAGE
    if interrupted or EXIT_INTERRUPTED in codes.values():
        return EXIT_INTERRUPTED
    return 1


def _error_line(messages: dict[int, object]) -> str | None:
    """The one error line to print: rank 0's, else the lowest rank's that a process wrote (see `nasviz.options
    .report`); None where no process wrote one."""
    for rank in sorted(messages):
        message = messages[rank]
        if isinstance(message, dict):
            message = message.get("message")
        if isinstance(message, str) and message.startswith("nasviz: "):
            return message
    return None


@contextlib.contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The elastic launcher's log lines (its configuration, 'Sending process ... closing signal', the failure
    summary) are not shown while the search runs."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _ready(logs: str) -> str:
    """The folder where the processes mark themselves started (`READY_ENV`)."""
    return os.path.join(logs, "ready")


@contextlib.contextmanager
def _environment(nproc: int, ready: str) -> Iterator[None]:
    """What the processes inherit: `LAUNCHER_ENV`, `READY_ENV` (the folder `ready`, made here) and (unless set)
    OMP_NUM_THREADS = this machine's CPUs / nproc, at least 1 (torchrun sets 1)."""
    saved = {k: os.environ.get(k) for k in (LAUNCHER_ENV, READY_ENV, "OMP_NUM_THREADS",
                                            "TORCHELASTIC_SIGNALS_TO_HANDLE")}
    os.makedirs(ready, exist_ok=True)
    os.environ[LAUNCHER_ENV] = "1"
    os.environ[READY_ENV] = ready
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cores() // nproc))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _passing_on_ctrl_c(interrupts: list[int], ready: str) -> Iterator[None]:
    """While the block runs, a SIGINT (Ctrl-C) here is sent on to every child process (recorded in `interrupts`),
    which stop as a one-process search does: at the next checkpoint, or now at a second Ctrl-C. A child whose
    Python is still starting (no mark in the folder `ready`: a SIGINT there is a "Fatal Python error" and a
    traceback) has done nothing yet, and is ended at once (SIGKILL)."""
    import psutil
    from torch.distributed.elastic.multiprocessing.api import SignalException

    def pass_on(signum, frame) -> None:
        interrupts.append(signum)
        children = psutil.Process().children()
        if not children:  # none started yet: the launcher stops (and ends any it starts meanwhile)
            raise SignalException("interrupted before the processes started", sigval=signal.SIGINT)
        for child in children:
            started = os.path.exists(os.path.join(ready, str(child.pid)))
            with contextlib.suppress(psutil.Error, OSError):
                os.kill(child.pid, signal.SIGINT if started else signal.SIGKILL)

    previous = signal.signal(signal.SIGINT, pass_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
