"""distributed: one search on 1 process x 2 threads vs 2 processes x 1 thread (torchrun), and a projection for N GPUs.

Part 1, measured: the same search (default: the quick preset with 100 warm-up steps and 3 generations, a few
minutes each; `--quick`: the smoke preset) runs twice, one after the other:

    OMP_NUM_THREADS=2 python CHILD ...                                          # 1 process x 2 threads
    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 CHILD ...        # 2 processes x 1 thread

CHILD runs `Search(...).run()` and notes the time of every event (rank 0), from which come: the time per
generation, the evaluations per minute (the evaluation part of the generations), the seconds per warm-up and
fine-tuning step. The figure is the speed-up per generation of 2 processes over 1; the JSON says in words whether
2 CPU processes help on this machine. The two runs are not interleaved (each is a whole search): the load
average before and after is printed, and `repeats` runs each more than once (medians).

Part 2, a projection (marked so): the time of a paper-preset search on N GPUs (N = 1, 2, 4, 8) from costs measured
here at the paper preset's size on this device: a training step on each process's slice of the batch
(batch_size / N), one evaluation (BN recalibration + fitness images), and the path's gradient size. The gradient
averaging is not measured (one device): it is modelled as 2 collectives per step, each `latency_s`, plus a ring
all-reduce of the path's gradients at `link_gb_s` (assumptions, in the JSON):

    steps x (step(batch_size / N) + collectives)
      + evaluation x (ceil(P / N) + G x (ceil(P / N) + ceil(2P / N)))     # initial; 'before'; re-evaluation

On a machine without CUDA the projection uses this CPU's costs and says so; run
`python -m benchmarks distributed` on a GPU machine for the GPU figures.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

ROOT = Path(__file__).resolve().parents[1]
SEARCHES = {
    "full": ("quick", {"warmup_steps": 100, "generations": 3}),
    "quick": ("smoke", {}),
    "tiny": ("smoke", {**common.TINY_SEARCH, "checkpoint_every": 2}),
}
"""preset and settings of the measured search, by size."""

CHILD = """
import json, sys, time
import torch
from nasviz.train import distributed
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

preset, settings, out, timings, threads = sys.argv[1:6]
settings, threads = json.loads(settings), int(threads)
torch.set_num_threads(threads)
marks = []
try:
    search = Search(SearchConfig.from_preset(preset, device="cpu", **settings), out)
    search.subscribe(lambda e: marks.append([time.perf_counter(), e.to_json()]))
    search.run()
    if search.ranks.main:
        keep = ("type", "phase", "generation", "stage")
        with open(timings, "w") as f:
            json.dump([[t, {k: v for k, v in e.items() if k in keep}] for t, e in marks], f)
finally:
    distributed.shutdown()
"""


def run_search(processes: int, threads: int, preset: str, settings: dict, folder: Path) -> dict[str, Any]:
    """One search on `processes` processes x `threads` threads; its process wall time, result and event times."""
    child, out, timings = folder / "child.py", folder / f"run{processes}", folder / f"timings{processes}.json"
    child.write_text(CHILD)
    args = [str(child), preset, json.dumps(settings), str(out), str(timings), str(threads)]
    launcher = ([sys.executable] if processes == 1 else
                [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start = common.now()
    proc = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True)
    wall = common.now() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the search on {processes} process(es) failed ({proc.returncode}): "
                           f"{(proc.stdout + proc.stderr)[-2000:]}")
    result = json.loads((out / "result.json").read_text())
    return {"process_wall_s": wall, "result": result, "marks": json.loads(timings.read_text())}


def phases(marks: list, config) -> dict[str, Any]:
    """Seconds per generation, per warm-up and fine-tuning step and per evaluation, from the event times."""
    def times(kind: str, **match) -> list[float]:
        return [t for t, e in marks if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]

    start_warmup = times("phase", phase="warmup")
    warmup_steps = times("train_step", phase="warmup")
    initial = times("phase", phase="initial")
    done = times("phase", phase="done")
    generations, train_s, eval_s, evaluations = [], [], [], 0
    for g in range(1, config.generations + 1):
        begin = times("phase", phase="generation", generation=g)[0]
        end = (times("phase", phase="generation", generation=g + 1) or done)[0]
        finished = times("generation", generation=g)[0]
        steps = times("train_step", phase="finetune", generation=g)
        before = times("evaluation", generation=g, stage="before")
        evaluations += len(times("evaluation", generation=g))
        generations.append(end - begin)
        if steps:
            trained_from = before[-1] if before else begin
            train_s.append(steps[-1] - trained_from)
            eval_s.append((trained_from - begin) + (finished - steps[-1]))
        else:
            eval_s.append(finished - begin)
    finetune = config.finetune_steps if config.uses_finetune else 0
    evaluation_s = sum(eval_s) / evaluations if evaluations else None
    return {
        "per_generation_s": common.rounded(statistics.median(generations), 3) if generations else None,
        "generations_s": [common.rounded(g, 3) for g in generations],
        "warmup_step_s": (common.rounded((warmup_steps[-1] - start_warmup[0]) / len(warmup_steps), 4)
                          if warmup_steps else None),
        "initial_population_s": common.rounded((times("generation", generation=0)[0] - initial[0]), 3),
        "finetune_step_s": common.rounded(sum(train_s) / (finetune * len(train_s)), 4) if train_s and finetune
        else None,
        "evaluation_s": common.rounded(evaluation_s, 4) if evaluation_s else None,
        "evaluations_per_min": common.rounded(60 / evaluation_s, 1) if evaluation_s else None,
        "evaluations_in_generations": evaluations,
    }


def measure_costs(device_name: str, tiny: bool, quick: bool, counts: tuple[int, ...], seed: int = 0) -> dict:
    """Per-step seconds at batch_size / N for each N in `counts`, one evaluation's seconds and the mean path's
    gradient bytes, at the paper preset's size (tiny: a tiny network) on `device_name`."""
    import torch

    from nasviz.search.config import SearchConfig
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.supernet import Supernet
    from nasviz.train.steps import accuracy, pick_device, prepare_model, recalibrate_bn

    config = SearchConfig.from_preset("paper")
    dev = pick_device(device_name)
    channels, layers, batch = (4, 3, 8) if tiny else (config.channels, config.layers, config.batch_size)
    on_gpu = dev.type == "cuda"
    paths, steps = (1, 2) if tiny or (quick and not on_gpu) else (2, 4) if quick or not on_gpu else (4, 6)
    eval_images = 32 if tiny else config.fitness_images if dev.type == "cuda" else 500 if quick else 1000
    shape, classes = (3, 32, 32), 10
    gen = torch.Generator().manual_seed(seed)

    def batch_of(n: int):
        x = torch.randn(n, *shape, generator=gen).to(dev).contiguous(memory_format=torch.channels_last)
        return x, torch.randint(classes, (n,), generator=gen).to(dev)

    torch.manual_seed(seed)
    supernet = prepare_model(Supernet(shape[0], classes, channels, layers), dev)
    optimizer = common.sgd(supernet, config.lr, config.momentum, config.weight_decay)
    eval_bs = min(config.eval_batch_size, eval_images)
    calibration = [batch_of(batch) for _ in range(config.bn_batches)]
    fitness_batches = [batch_of(eval_bs) for _ in range(max(1, eval_images // eval_bs))]
    images = sum(len(y) for _, y in fitness_batches)
    rng = random.Random(seed)
    genotypes = [sample_genotype(rng) for _ in range(paths + 1)]  # the first warms up and is not timed
    step_s: dict[int, list[float]] = {n: [] for n in counts}
    recal, acc, grad_bytes = [], [], []
    for i, g in enumerate(genotypes):
        for n in counts:
            times = common.engine_steps(supernet, batch_of(batch // n), optimizer, lambda g=g: g, steps + 1,
                                        config.grad_clip)
            if i:
                step_s[n] += times
        r = common.timed(lambda g=g: recalibrate_bn(supernet, g, calibration), dev)
        a = common.timed(lambda g=g: accuracy(supernet, g, fitness_batches), dev)
        if i:
            recal.append(r)
            acc.append(a)
            grad_bytes.append(4 * sum(p.numel() for m in supernet.path_modules(g) for p in m.parameters()))
    return {"device": str(dev), "on_gpu": dev.type == "cuda",
            "label": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU: {common.cpu_model()}",
            "channels": channels, "layers": layers, "batch_size": batch,
            "step_s": {n: common.median(v) for n, v in step_s.items()},
            "evaluation_s": common.median(recal) + common.median(acc) * config.fitness_images / images,
            "gradient_bytes": statistics.mean(grad_bytes), "eval_images_timed": images}


def projection(config, n: int, step_s: float, evaluation_s: float, gradient_bytes: float, link_gb_s: float,
               latency_s: float) -> dict[str, Any]:
    """Projected seconds of `config`'s search on `n` devices (see the module's docstring)."""
    finetune = config.uses_finetune and config.finetune_steps > 0
    steps = config.warmup_steps + (config.generations * config.finetune_steps if finetune else 0)
    collectives = 0.0 if n == 1 else 2 * latency_s + 2 * (n - 1) / n * gradient_bytes / (link_gb_s * 1e9)
    p = config.population
    before = math.ceil(p / n) if finetune and config.record_before else 0
    reevaluated = 2 * p if finetune and config.reevaluate_parents else p
    rounds = math.ceil(p / n) + config.generations * (before + math.ceil(reevaluated / n))
    train, evaluate = steps * (step_s + collectives), rounds * evaluation_s
    return {"devices": n, "step_s": common.rounded(step_s, 5), "collectives_s": common.rounded(collectives, 6),
            "evaluation_rounds": rounds, "train_h": common.rounded(train / 3600, 2),
            "evaluate_h": common.rounded(evaluate / 3600, 2), "total_h": common.rounded((train + evaluate) / 3600, 2)}


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    repeats: int = 1,
    preset: str | None = None,
    settings: dict | None = None,
    device: str = "auto",
    devices: tuple[int, ...] | None = None,
    link_gb_s: float = 100.0,
    latency_s: float = 3e-5,
) -> dict[str, Any]:
    from nasviz.search.config import SearchConfig

    started, load_before = common.now(), common.loadavg()
    size = common.size(quick, tiny)
    preset = preset or SEARCHES[size][0]
    settings = {**SEARCHES[size][1], **(settings or {})} if preset == SEARCHES[size][0] else dict(settings or {})
    config = SearchConfig.from_preset(preset, device="cpu", **settings)
    layouts = {"1 process x 2 threads": (1, 2), "2 processes x 1 thread": (2, 1)}
    measured: dict[str, list[dict]] = {name: [] for name in layouts}
    with tempfile.TemporaryDirectory(prefix="nasviz-bench-dist-") as tmp:
        for r in range(repeats):
            for name, (processes, threads) in layouts.items():
                folder = Path(tmp) / f"{r}-{processes}"
                folder.mkdir()
                out = run_search(processes, threads, preset, settings, folder)
                measured[name].append({"process_wall_s": common.rounded(out["process_wall_s"], 2),
                                       "engine_search_s": out["result"]["search_wall_time_s"],
                                       "processes": out["result"].get("processes", 1),
                                       "evaluations": out["result"]["evaluations"],
                                       **phases(out["marks"], config)})

    def med(name: str, key: str) -> float | None:
        values = [m[key] for m in measured[name] if m[key] is not None]
        return common.rounded(common.median(values), 4) if values else None

    one, two = layouts
    summary = {name: {k: med(name, k) for k in ("per_generation_s", "evaluations_per_min", "warmup_step_s",
                                                 "finetune_step_s", "evaluation_s", "engine_search_s")}
               for name in layouts}
    per_gen = (summary[one]["per_generation_s"], summary[two]["per_generation_s"])
    speedup = common.rounded(per_gen[0] / per_gen[1], 3) if all(per_gen) else None
    verdict = (None if speedup is None else
               f"2 processes x 1 thread take {1 / speedup:.2f}x the time per generation of 1 process x 2 threads "
               f"on this machine: " + ("they help" if speedup > 1.05 else "they do not help" if speedup < 0.95
                                       else "no clear difference"))

    counts = tuple(devices or ((1, 2) if tiny else (1, 2, 4, 8)))
    costs = measure_costs(device, tiny, quick, counts)
    paper = SearchConfig.from_preset("paper")
    projected = [projection(paper, n, costs["step_s"][n], costs["evaluation_s"], costs["gradient_bytes"], link_gb_s,
                            latency_s) for n in counts]
    kind = "GPU" if costs["on_gpu"] else "CPU (no GPU here: run this benchmark on a GPU machine for GPU figures)"
    return common.result(
        "distributed",
        figure="speed-up per generation, 2 processes x 1 thread over 1 process x 2 threads (this machine)",
        value=speedup,
        unit="x",
        goal=None,
        met=None,
        inputs={"preset": preset, "settings": settings, "repeats": repeats, "layouts": layouts, "size": size,
                "projection": {"preset": "paper", "devices": list(counts), "device": costs["device"],
                               "link_gb_s (assumed)": link_gb_s, "latency_s per collective (assumed)": latency_s,
                               "channels": costs["channels"], "layers": costs["layers"],
                               "batch_size": costs["batch_size"], "eval_images_timed": costs["eval_images_timed"]}},
        results={"summary": summary, "verdict": verdict, "runs": measured,
                 "projection": {"PROJECTION": f"not measured: paper preset on N devices of this kind: {kind}",
                                "measured_on": costs["label"],
                                "step_s_by_devices": {str(n): common.rounded(s, 5) for n, s in costs["step_s"].items()},
                                "evaluation_s": common.rounded(costs["evaluation_s"], 4),
                                "path_gradient_mb": common.rounded(costs["gradient_bytes"] / 1e6, 3),
                                "by_devices": projected}},
        load_before=load_before,
        started=started,
        notes=["the two searches run one after the other, not interleaved; compare them with the load averages",
               "their results differ slightly: with 2 processes BatchNorm normalises each process's half of a batch",
               "the projection is a model, not a measurement: gradient averaging is modelled from the assumed link "
               "bandwidth and latency; step times at batch_size / N are measured on one device"],
    )
