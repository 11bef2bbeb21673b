"""Cores another program keeps busy, and torch's threads: one line of advice before a notebook trains.

On a 2-core machine where another process keeps one core busy, torch's two OpenMP threads wait for each other at
every operation and a search runs about 2x slower than with one thread (`python -m benchmarks notebooks --set
busy=1`, docs/benchmarks.md). The thread count is not changed for you: results depend on it (same seed, same
machine, same threads => same result), so the notebook says what it saw and how to choose (`use_threads(1)`).
"""

from __future__ import annotations

from nasviz.cores import usable_cores

SAMPLE_S = 0.3
"""How long the machine's CPU use is sampled (the kernel itself is idle meanwhile)."""
BUSY_CORE = 0.6
"""Other programs' use, in cores, from which a core counts as taken (rounded to whole cores above it)."""


def busy_cores(sample_s: float = SAMPLE_S) -> float:
    """Cores kept busy by other programs, in cores, measured over `sample_s` seconds while this process sleeps."""
    import psutil

    return psutil.cpu_percent(interval=sample_s) / 100 * (psutil.cpu_count() or 1)


def thread_advice(threads: int, cores: int, busy: float) -> str | None:
    """One line when `threads` torch threads would share `cores` with `busy` cores of other work, else None."""
    if busy < BUSY_CORE:
        return None
    free = max(1, cores - max(1, round(busy)))
    if threads <= free:
        return None
    return (f"another program keeps about {busy:.1f} of {cores} cores busy: torch's {threads} threads will wait for "
            f"each other (about 2x slower on 2 cores). For a faster run call nv.use_threads({free}) before "
            "training; the thread count changes results slightly, so keep it the same when comparing runs.")


def advise_threads() -> str | None:
    """`thread_advice` for this machine now and torch's current thread count."""
    import torch

    return thread_advice(torch.get_num_threads(), usable_cores(), busy_cores())


def use_threads(threads: int) -> None:
    """Train with `threads` torch threads from now on (1 .. the usable cores)."""
    import torch

    cores = usable_cores()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ValueError(f"threads={threads!r}: allowed 1..{cores} (the cores this machine lets the kernel use)")
    torch.set_num_threads(threads)
