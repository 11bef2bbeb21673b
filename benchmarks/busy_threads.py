"""busy-threads: torch threads on a machine where another program keeps a core busy.

A classroom machine is rarely idle (a browser, a second notebook). torch's OpenMP threads wait for each other at
every operation, so when one of two cores is taken a 2-thread step can be much slower than a 1-thread step. This
measures the engine's supernet training step (`common.engine_steps`, quick-size network, single random path)
with 1 thread and with every usable core, on the idle machine and with `busy` other processes spinning, in
one process, interleaved blocks, medians. The figure is (all cores, busy) / (1 thread, busy): above 1 means a
notebook should train with one thread while the other program runs (`nv.use_threads(1)`; `nv.setup()` says so).
"""

from __future__ import annotations

import random
from typing import Any

import torch

from benchmarks import common


def run(quick: bool = False, *, tiny: bool = False, busy: int = 1, reps: int | None = None,
        block_steps: int | None = None, seed: int = 0) -> dict[str, Any]:
    from nasviz.cores import usable_cores
    from nasviz.search.config import SearchConfig
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.supernet import Supernet
    from nasviz.train.steps import prepare_model

    started, load_before = common.now(), common.loadavg()
    preset = SearchConfig.from_preset("quick")
    channels, layers, batch_size = common.network_size(tiny, None, None, None)
    reps = reps or (1 if tiny else 3 if quick else 5)
    block_steps = block_steps or (3 if tiny else 6 if quick else 11)
    cores = usable_cores()
    thread_counts = sorted({1, cores})
    before = torch.get_num_threads()

    data = common.fashion_mnist()
    batch = common.fixed_batch(batch_size, seed)
    torch.manual_seed(seed)
    supernet = prepare_model(Supernet(data.shape[0], data.num_classes, channels, layers), torch.device("cpu"))
    optimizer = common.sgd(supernet, preset.lr, preset.momentum, preset.weight_decay)
    rng = random.Random(seed)

    def block() -> list[float]:
        return common.engine_steps(supernet, batch, optimizer, lambda: sample_genotype(rng), block_steps,
                                   preset.grad_clip)

    times: dict[str, list[float]] = {}
    try:
        for load in (0, busy):
            with common.busy_processes(load):
                block()  # untimed: warms the caches under this load
                for r in range(reps):
                    for threads in thread_counts if r % 2 == 0 else thread_counts[::-1]:
                        torch.set_num_threads(threads)
                        times.setdefault(f"threads={threads} busy={load}", []).extend(block())
    finally:
        torch.set_num_threads(before)
    medians = {k: common.rounded(common.median(v), 5) for k, v in times.items()}
    value = common.rounded(medians[f"threads={cores} busy={busy}"] / medians[f"threads=1 busy={busy}"], 3)
    idle = common.rounded(medians[f"threads={cores} busy=0"] / medians["threads=1 busy=0"], 3)
    return common.result(
        "busy-threads",
        figure=f"step time with {cores} threads / with 1 thread, {busy} other busy process(es)",
        value=value,
        unit="ratio of median step times",
        goal=None,
        met=None,
        inputs={"channels": channels, "layers": layers, "batch_size": batch_size, "cores": cores, "busy": busy,
                "reps": reps, "steps_per_block": block_steps, "seed": seed},
        results={"ratio_busy": value, "ratio_idle": idle, "median_step_s": medians,
                 "step_s": {k: common.summary(v) for k, v in times.items()}},
        load_before=load_before,
        started=started,
        notes=["one process; blocks of engine steps on a fixed batch, a random single path per step, thread counts "
               "interleaved; a ratio above 1 means the extra threads cost more than they give"],
    )
