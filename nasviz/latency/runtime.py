"""Running and timing a module in a runtime: PyTorch eager on the CPU, or its ONNX export in onnxruntime.

Timing is interleaved: every round times each runner once (a block of calls long enough to measure), so a load
that comes and goes on a shared machine falls on all of them alike; each runner's median over the rounds is its
time, and the spread between its quartiles says how steady it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nasviz.errors import ConfigError
from nasviz.space.genotypes import suggest

RUNTIMES: tuple[str, ...] = ("onnxruntime", "torch")
BLOCK_S = 0.0005
"""Shortest timed block: a runner faster than this is called several times per sample. Short blocks: on a shared
machine most of them then run without being interrupted, which the `min` statistic picks out."""
STATISTICS: tuple[str, ...] = ("median", "min")
"""What a timing reports as its time: the median over the rounds (an idle machine), or the fastest round (a
machine that other work shares: the least disturbed estimate of the uncontended time)."""

Runner = Callable[[], object]


def check_runtime(runtime: str) -> str:
    text = str(runtime).strip().lower()
    if text not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}{suggest(text, RUNTIMES)}; allowed: {', '.join(RUNTIMES)}")
    if text == "onnxruntime":
        import importlib.util

        missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(f"runtime 'onnxruntime' needs the optional package(s) {', '.join(missing)}: "
                              "pip install 'nasviz[export]' (or onnx onnxscript onnxruntime)")
    return text


@contextlib.contextmanager
def quiet():
    """Silence the exporter's warnings and progress lines."""
    with warnings.catch_warnings(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def onnx_bytes(module: nn.Module, inputs: Sequence[torch.Tensor]) -> bytes:
    """`module` (eval mode) exported as `nasviz.export` exports a model: torch's `torch.export`-based exporter."""
    with quiet(), torch.no_grad():
        program = torch.onnx.export(module.eval(), tuple(inputs), dynamo=True, external_data=False, verbose=False)
    return program.model_proto.SerializeToString()


def identity_onnx(shapes: Sequence[Sequence[int]]) -> bytes:
    """An ONNX model that hands its inputs back (one Identity node each): a call's cost with no work in it."""
    import onnx
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(s)) for i, s in enumerate(shapes)]
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, list(s)) for i, s in enumerate(shapes)]
    nodes = [helper.make_node("Identity", [f"x{i}"], [f"y{i}"]) for i in range(len(shapes))]
    model = helper.make_model(helper.make_graph(nodes, "identity", ins, outs),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    return onnx.shape_inference.infer_shapes(model).SerializeToString()


def ort_session(model: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def example(shapes: Sequence[Sequence[int]], batch: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *s, generator=generator) for s in shapes]


def runner(module: nn.Module | None, shapes: Sequence[Sequence[int]], runtime: str, batch: int,
           threads: int) -> Runner:
    """A call of `module` on seeded inputs of `shapes` (batch `batch`) in `runtime`; `module=None`: the empty call
    (inputs handed back), which is subtracted from every piece's time."""
    inputs = example(shapes, batch)
    if runtime == "torch":
        if module is None:
            return lambda: tuple(inputs)
        module = module.eval()

        def run() -> object:
            with torch.inference_mode():
                return module(*inputs)

        return run
    model = identity_onnx([(batch, *s) for s in shapes]) if module is None else onnx_bytes(module, inputs)
    session = ort_session(model, threads)
    feeds = {arg.name: x.numpy() for arg, x in zip(session.get_inputs(), inputs, strict=True)}
    return lambda: session.run(None, feeds)


@contextlib.contextmanager
def torch_threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_interleaved(runners: dict[str, Runner], warmup: int, repeats: int, progress: bool = False,
                     desc: str = "timing") -> dict[str, dict[str, float]]:
    """Per runner: median and interquartile spread (ms per call) over `repeats` rounds, after `warmup` calls
    each; a round times every runner once, a block of calls of at least `BLOCK_S`."""
    number = {}
    for key, run in runners.items():
        for _ in range(max(warmup, 1)):
            run()
        start = time.perf_counter()
        run()
        number[key] = max(1, int(BLOCK_S / max(time.perf_counter() - start, 1e-7)))
    samples: dict[str, list[float]] = {key: [] for key in runners}
    for _ in tqdm(range(repeats), desc=desc, disable=not progress, leave=False):
        for key, run in runners.items():
            n = number[key]
            start = time.perf_counter()
            for _ in range(n):
                run()
            samples[key].append((time.perf_counter() - start) / n * 1e3)
    return {key: summary(values) for key, values in samples.items()}


def summary(values: list[float]) -> dict[str, float]:
    q1, _q2, q3 = np.percentile(values, [25, 50, 75])
    return {"median_ms": statistics.median(values), "min_ms": min(values), "spread_ms": float(q3 - q1),
            "samples": len(values)}


def check_statistic(statistic: str) -> str:
    text = str(statistic).strip().lower()
    if text not in STATISTICS:
        raise ConfigError(f"unknown statistic {statistic!r}{suggest(text, STATISTICS)}; allowed: "
                          f"{', '.join(STATISTICS)}")
    return text


def machine(runtime: str, threads: int) -> dict[str, object]:
    """The CPU, thread count, runtime and versions a timing was made with."""
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    if runtime == "onnxruntime":
        import onnx
        import onnxruntime

        versions.update(onnxruntime=onnxruntime.__version__, onnx=onnx.__version__)
    from nasviz.version import __version__

    versions["nasviz"] = __version__
    return {"cpu": cpu, "machine": platform.machine(), "system": platform.system(), "cores": os.cpu_count(),
            "threads": threads, "runtime": runtime, "versions": versions}


def device_name(info: dict[str, object]) -> str:
    """A file-name-safe name of the device (CPU model and architecture)."""
    text = f"{info['cpu']}-{info['machine']}".lower()
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-").replace("--", "-")[:80] or "cpu"
