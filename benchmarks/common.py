"""Shared helpers for the benchmarks: timing, medians, machine description and the result layout.

Every benchmark returns one dict in the same layout (see `result`): the figure first (name, value, unit,
goal, whether the goal is met), then its inputs (sizes, repetitions), the measured results (medians) and the
machine (CPU, threads, load average before and after, GPU or None).

Timings on a shared CPU are noisy: torch's OpenMP threads collapse when another process is busy. Every
comparison here is therefore measured side by side in one process, interleaved (A, B, A, B, ...), and
reported as medians; the load average is printed so a reader can judge how busy the machine was.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

THREADS_SET = False
"""True once `set_threads` chose torch's thread count (`--threads`); child processes then get the same."""

NO_GPU_NOTE = "no CUDA device in this session; run `python -m benchmarks gpu` on a GPU machine to fill this in"


def set_threads(n: int) -> None:
    """Use `n` torch threads here (and, through OMP_NUM_THREADS, in child processes the benchmarks start)."""
    global THREADS_SET
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    THREADS_SET = True


def jsonable(value: Any) -> Any:
    """`value` with NaN/inf floats turned into None and tuples into lists, so json.dumps gives strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def now() -> float:
    return time.perf_counter()


def sync(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work (a no-op on the CPU), so wall-clock timings are honest."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device | str | None = None) -> float:
    """Seconds one call of `fn` takes (GPU work included)."""
    sync(device)
    start = now()
    fn()
    sync(device)
    return now() - start


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, warmup: int = 1, device: torch.device | str | None = None
) -> dict[str, list[float]]:
    """Time every function `reps` times, interleaved (A, B, C, A, B, C, ...; the order rotates each round so
    no function always runs right after the same neighbour). `warmup` untimed rounds come first."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(timed(fns[name], device))
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summary(values: Sequence[float], digits: int = 5) -> dict[str, float | int]:
    """Median, quartiles, min and count of a list of timings (seconds)."""
    values = sorted(values)
    if not values:
        return {"n": 0}
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return {
        "median": round(median(values), digits),
        "q1": round(q[0], digits),
        "q3": round(q[2], digits),
        "min": round(values[0], digits),
        "n": len(values),
    }


def rounded(x: float, digits: int = 4) -> float:
    return float(round(x, digits))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name() -> str | None:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine(load_before: list[float] | None = None) -> dict[str, Any]:
    """The machine a benchmark ran on; `load_before` is `loadavg()` taken when the benchmark started."""
    gpu = gpu_name()
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "threads_set_by_benchmarks": THREADS_SET,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if gpu is None:
        info["gpu_note"] = NO_GPU_NOTE
    return info


def result(
    name: str,
    *,
    figure: str,
    value: float | None,
    unit: str,
    goal: str | None,
    met: bool | None,
    inputs: dict[str, Any],
    results: dict[str, Any],
    load_before: list[float] | None,
    started: float,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The common layout: figure first, then inputs, results, machine, wall time and notes."""
    return jsonable({
        "benchmark": name,
        "figure": {"name": figure, "value": value, "unit": unit, "goal": goal, "met": met},
        "inputs": inputs,
        "results": results,
        "machine": machine(load_before),
        "wall_s": rounded(now() - started, 2),
        "notes": notes or [],
    })


_DATA: dict[str, Any] = {}


def fashion_mnist():
    """Fashion-MNIST as an `ImageData`, loaded once per process."""
    if "fashion-mnist" not in _DATA:
        from nasviz.data.loading import load_dataset

        _DATA["fashion-mnist"] = load_dataset("fashion-mnist")
    return _DATA["fashion-mnist"]


def fixed_batch(batch_size: int, seed: int = 0, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """One normalized, augmented, channels_last Fashion-MNIST training batch, as the engine's stream makes it."""
    from nasviz.data.loading import BatchStream, crop_padding_for

    data = fashion_mnist()
    n = max(batch_size, 512)
    stream = BatchStream(data.train_images[:n], data.train_labels[:n], batch_size, data.mean, data.std, seed=seed,
                         crop_padding=crop_padding_for(data.shape), flip=data.flip, device=device, channels_last=True)
    return stream.next()


def engine_steps(model, batch, optimizer, sample_path, steps: int, grad_clip: float = 5.0) -> list[float]:
    """Per-step seconds of `steps` engine training steps (`nasviz.train.steps.train_steps`), one call.

    The engine trains in chunks (a warm-up chunk, a generation's fine-tuning), so its steady per-step cost is
    the time between consecutive steps inside one call: this returns those `steps - 1` intervals (the first
    step also pays the call's one-off `model.train()`, and is left out)."""
    from nasviz.train.steps import train_steps

    marks: list[float] = []
    train_steps(model, lambda: batch, optimizer, sample_path, steps, phase="benchmark", grad_clip=grad_clip,
                on_step=lambda _record: marks.append(now()))
    return [b - a for a, b in zip(marks, marks[1:])]


def sgd(model: torch.nn.Module, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 3e-4):
    """The engine's optimizer (SearchConfig's defaults)."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


SCRATCH = {
    # the full benchmarks: the quick preset's search width and depth, a few epochs on a few thousand images
    "full": dict(channels=8, layers=5, epochs=3, batch_size=64, train_size=5000, test_size=2000, cutout=0,
                 drop_path=0.0, auxiliary_weight=0.0, seed=0, device="cpu"),
    # --quick: tiny, only to show the pipeline runs; its numbers mean nothing
    "quick": dict(channels=4, layers=3, epochs=1, batch_size=32, train_size=512, test_size=500, cutout=0,
                  drop_path=0.0, auxiliary_weight=0.0, seed=0, device="cpu"),
    # tests
    "tiny": dict(channels=4, layers=3, epochs=1, batch_size=16, train_size=64, test_size=64, cutout=0,
                 drop_path=0.0, auxiliary_weight=0.0, seed=0, device="cpu"),
}
"""From-scratch training settings (`nasviz.train.scratch.ScratchConfig`) used by the ranking and methods benchmarks."""

TINY_SEARCH = dict(warmup_steps=4, population=3, generations=1, finetune_steps=4, fitness_images=64,
                   weight_images=256, batch_size=16, eval_batch_size=64, bn_batches=1, top_k=2, checkpoint_every=100)
"""Overrides of the smoke preset that make a search take about a second (tests only)."""


def size(quick: bool, tiny: bool) -> str:
    return "tiny" if tiny else "quick" if quick else "full"


def scratch_accuracy(genotype, data, settings: dict[str, Any], cache: dict[tuple[str, int], dict]) -> dict:
    """Test accuracy of `genotype` trained from scratch (`nasviz.train.scratch.train_from_scratch`), cached by
    (genotype, seed) so a genotype found twice is trained once."""
    from nasviz.train.scratch import ScratchConfig, train_from_scratch

    key = (genotype.key(), settings["seed"])
    if key not in cache:
        out = train_from_scratch(genotype, data, ScratchConfig(**settings), progress=False)
        cache[key] = {"test_accuracy": out["test_accuracy"], "params": out["params"],
                      "wall_time_s": rounded(out["wall_time_s"], 2),
                      "final_train_accuracy": rounded(out["history"][-1]["train_accuracy"])}
    return cache[key]


def network_size(tiny: bool, channels: int | None, layers: int | None, batch_size: int | None) -> tuple[int, int, int]:
    """(channels, layers, batch size): the given values, else tiny ones, else the quick preset's."""
    from nasviz.search.config import SearchConfig

    preset = SearchConfig.from_preset("quick")
    return (
        channels or (2 if tiny else preset.channels),
        layers or (3 if tiny else preset.layers),
        batch_size or (8 if tiny else preset.batch_size),
    )


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` single-threaded processes spinning on the CPU while the block runs; stopped after it."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"busy={count!r}: give a whole number of busy processes >= 0")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
