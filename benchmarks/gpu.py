"""gpu: measured per-step costs at the paper preset's size, and the projected time of a paper-preset search.

Projection method (the same on any device):

    supernet steps   = warmup_steps + generations x finetune_steps
    evaluations      = population                                  (initial population)
                     + generations x population x (1 + [reevaluate_parents] + [record_before])
    one evaluation   = BN recalibration (bn_batches x batch_size images) + accuracy on fitness_images
    projected search = steps x median step time + evaluations x median evaluation time

with the paper preset's numbers (`SearchConfig.from_preset('paper')`) and times measured here on the paper
preset's supernet (16 channels, 8 cells, batch 96, 3x32x32 inputs, channels_last, bfloat16 autocast on CUDA as
the engine does). Inputs are random tensors of CIFAR-10's shape: the cost does not depend on pixel values, and
the benchmark needs no download. The accuracy part is timed on `eval_images` images and scaled linearly to
the preset's fitness_images.

On a machine without CUDA the JSON says `"gpu": null` with a note and gives the same projection for this CPU;
run `python -m benchmarks gpu` on a GPU machine to fill the GPU column in.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from benchmarks import common

PAPER_GPU_DAYS = 0.50
"""The paper's reported search cost on CIFAR-10 (GPU-days)."""


def projection(config, step_s: float, eval_s: float) -> dict[str, Any]:
    finetune = config.uses_finetune and config.finetune_steps > 0
    steps = config.warmup_steps + (config.generations * config.finetune_steps if finetune else 0)
    per_generation = config.population * (1 + int(config.reevaluate_parents and finetune)
                                          + int(config.record_before and finetune))
    evaluations = config.population + config.generations * per_generation
    seconds = steps * step_s + evaluations * eval_s
    return {"supernet_steps": steps, "evaluations": evaluations, "step_s": common.rounded(step_s, 5),
            "evaluation_s": common.rounded(eval_s, 4), "train_s": common.rounded(steps * step_s, 1),
            "evaluate_s": common.rounded(evaluations * eval_s, 1), "total_s": common.rounded(seconds, 1),
            "total_hours": common.rounded(seconds / 3600, 2), "device_days": common.rounded(seconds / 86400, 3)}


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    device: str = "auto",
    paths: int | None = None,
    steps_per_path: int | None = None,
    eval_images: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    from nasviz.search.config import SearchConfig
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.supernet import Supernet
    from nasviz.train.steps import accuracy, pick_device, prepare_model, recalibrate_bn

    started, load_before = common.now(), common.loadavg()
    config = SearchConfig.from_preset("paper")
    dev = pick_device(device)
    on_gpu = dev.type == "cuda"
    channels, layers, batch = (4, 3, 8) if tiny else (config.channels, config.layers, config.batch_size)
    paths = paths or (1 if tiny else 2 if quick else 6)
    steps_per_path = steps_per_path or (2 if tiny else 3 if quick else 6)
    eval_images = eval_images or (32 if tiny else config.fitness_images if on_gpu else 500 if quick else 1000)
    eval_bs = min(config.eval_batch_size, eval_images)

    shape, classes = (3, 32, 32), 10
    gen = torch.Generator().manual_seed(seed)

    def batch_of(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, *shape, generator=gen).to(dev).contiguous(memory_format=torch.channels_last)
        return x, torch.randint(classes, (n,), generator=gen).to(dev)

    torch.manual_seed(seed)
    supernet = prepare_model(Supernet(shape[0], classes, channels, layers), dev)
    optimizer = common.sgd(supernet, config.lr, config.momentum, config.weight_decay)
    train_batch = batch_of(batch)
    calibration = [batch_of(batch) for _ in range(config.bn_batches)]
    fitness_batches = [batch_of(eval_bs) for _ in range(max(1, eval_images // eval_bs))]
    images = sum(len(y) for _, y in fitness_batches)
    rng = random.Random(seed)

    step_times, recal_times, acc_times = [], [], []
    for i in range(paths + 1):  # the first path warms up (CUDA kernels, allocator) and is not timed
        g = sample_genotype(rng)
        times = common.engine_steps(supernet, train_batch, optimizer, lambda g=g: g, steps_per_path + 1,
                                    config.grad_clip)
        r = common.timed(lambda g=g: recalibrate_bn(supernet, g, calibration), dev)
        a = common.timed(lambda g=g: accuracy(supernet, g, fitness_batches), dev)
        if i > 0:
            step_times += times
            recal_times.append(r)
            acc_times.append(a)
    step_s = common.median(step_times)
    eval_s = common.median(recal_times) + common.median(acc_times) * config.fitness_images / images
    proj = projection(config, step_s, eval_s)
    label = torch.cuda.get_device_name(dev) if on_gpu else f"CPU: {common.cpu_model()}"
    results = {
        "gpu": (proj | {"device": label}) if on_gpu else None,
        "gpu_note": None if on_gpu else common.NO_GPU_NOTE,
        "measured_on": label,
        "projection": proj,
        "paper_reported_gpu_days": PAPER_GPU_DAYS,
        "step_s": common.summary(step_times),
        "recalibration_s": common.summary(recal_times),
        "accuracy_s": common.summary(acc_times),
    }
    return common.result(
        "gpu",
        figure=f"projected paper-preset search on {'this GPU' if on_gpu else 'this CPU (no GPU)'}",
        value=proj["total_hours"],
        unit="hours",
        goal=None,
        met=None,
        inputs={"preset": "paper", "channels": channels, "layers": layers, "batch_size": batch, "input": list(shape),
                "warmup_steps": config.warmup_steps, "generations": config.generations,
                "population": config.population, "finetune_steps": config.finetune_steps,
                "bn_batches": config.bn_batches, "fitness_images": config.fitness_images,
                "eval_batch_size": eval_bs, "eval_images_timed": images, "paths": paths,
                "steps_per_path": steps_per_path, "device": str(dev), "tiny": tiny, "synthetic_inputs": True},
        results=results,
        load_before=load_before,
        started=started,
        notes=["projection = (warmup + generations x finetune) steps x step time + evaluations x evaluation time",
               "the accuracy part of an evaluation is timed on eval_images_timed images and scaled linearly"],
    )
