"""eval-throughput: candidate evaluations per minute with inherited weights.

One evaluation is exactly what the engine does per candidate: `nasviz.train.steps.fitness` = BatchNorm
recalibration on `bn_batches` training batches of `batch_size`, then accuracy on the fitness images (1,000 for
the quick preset) in batches of `eval_batch_size`, in inference mode, channels_last. The supernet, the
calibration batches and the fitness batches are built by the engine itself (`nasviz.search.loop.Search` with the
quick preset), so nothing here differs from a real search. Goal: >= 60 evaluations per minute.

It also measures the choice of evaluation batch size (100, 250, 500, 1000 by default): the same paths are
evaluated at every size, interleaved, and the fastest median is reported as `best_eval_batch_size`. Two
diagnostics say where the time goes: the same evaluation on the standalone network of each path (no supernet
overhead at all; the ratio is the supernet's overhead), and on a contiguous (not channels_last) copy.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from benchmarks import common

GOAL = 60.0
BATCH_SIZES = (100, 250, 500, 1000)


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    paths: int | None = None,
    batch_sizes: tuple[int, ...] | None = None,
    seed: int = 0,
    **overrides: Any,
) -> dict[str, Any]:
    import torch

    from nasviz.data.loading import eval_batches
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.network import SearchNetwork, copy_path_weights
    from nasviz.train.steps import accuracy, fitness, prepare_model, recalibrate_bn

    started, load_before = common.now(), common.loadavg()
    if tiny:
        overrides = {"channels": 4, "layers": 3, "fitness_images": 200, "batch_size": 16, "weight_images": 256,
                     "eval_batch_size": 100, **overrides}
        batch_sizes = batch_sizes or (50, 200)
    config = SearchConfig.from_preset("quick", seed=seed, device="cpu", **overrides)
    paths = paths or (2 if tiny else 4 if quick else 12)
    batch_sizes = tuple(batch_sizes or BATCH_SIZES)

    search = Search(config)  # builds the supernet, calibration and fitness batches as a real search does
    model, calibration = search.supernet, search.calibration
    fitness_images = sum(len(yb) for _, yb in search.fitness_batches)
    data = search.data
    from nasviz.data.loading import split_indices

    _, fitness_idx = split_indices(len(data.train_labels), config.weight_images, config.fitness_images, config.seed)
    images, labels = data.train_images[fitness_idx], data.train_labels[fitness_idx]
    by_size = {bs: list(eval_batches(images, labels, bs, data.mean, data.std, search.device, True))
               for bs in batch_sizes}
    rng = random.Random(seed)
    genotypes = [sample_genotype(rng) for _ in range(paths)]

    # 1. the preset's own evaluation, with its parts timed separately
    fitness(model, genotypes[0], calibration, search.fitness_batches)  # warm-up, untimed
    total, recal, acc, overhead = [], [], [], []
    for g in genotypes:
        total.append(common.timed(lambda g=g: fitness(model, g, calibration, search.fitness_batches)))
        recal.append(common.timed(lambda g=g: recalibrate_bn(model, g, calibration)))
        acc.append(common.timed(lambda g=g: accuracy(model, g, search.fitness_batches)))
        overhead.append(common.timed(lambda g=g: recalibrate_bn(model, g, [])))
    per_eval = common.median(total)
    value = common.rounded(60.0 / per_eval, 2)

    # 2. evaluation batch size: every size on the same paths, interleaved (rotating order)
    sweep: dict[int, list[float]] = {bs: [] for bs in batch_sizes}
    for i, g in enumerate(genotypes):
        order = list(batch_sizes)
        shift = i % len(order)
        for bs in order[shift:] + order[:shift]:
            sweep[bs].append(common.timed(lambda g=g, bs=bs: fitness(model, g, calibration, by_size[bs])))
    sweep_medians = {bs: common.median(t) for bs, t in sweep.items()}
    best = min(sweep_medians, key=sweep_medians.get)

    # 3. where the time goes: the supernet against the standalone network of the same path (what an
    #    evaluation would cost with no supernet overhead at all), and channels_last against the default layout
    contiguous = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    calibration_nc = [(xb.contiguous(), yb) for xb, yb in calibration]
    fitness_nc = [(xb.contiguous(), yb) for xb, yb in search.fitness_batches]
    diag: dict[str, list[float]] = {"supernet": [], "standalone": [], "supernet_contiguous": []}
    for i, g in enumerate(genotypes):
        alone = SearchNetwork(g, data.shape[0], data.num_classes, config.channels, config.layers)
        alone = prepare_model(copy_path_weights(model, alone), search.device)
        fns = {"supernet": lambda g=g: fitness(model, g, calibration, search.fitness_batches),
               "standalone": lambda g=g, alone=alone: fitness(alone, g, calibration, search.fitness_batches),
               "supernet_contiguous": lambda g=g: fitness(contiguous, g, calibration_nc, fitness_nc)}
        names = list(fns)
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            diag[name].append(common.timed(fns[name]))
    diag_medians = {name: common.median(t) for name, t in diag.items()}

    return common.result(
        "eval-throughput",
        figure="evaluations per minute",
        value=value,
        unit="evaluations/min (60 / median seconds per evaluation)",
        goal=f">= {GOAL:g}",
        met=value >= GOAL,
        inputs={"preset": "quick", "dataset": config.dataset, "channels": config.channels, "layers": config.layers,
                "fitness_images": fitness_images, "bn_batches": config.bn_batches,
                "calibration_batch_size": config.batch_size, "eval_batch_size": config.eval_batch_size,
                "paths": paths, "batch_sizes_swept": list(batch_sizes), "channels_last": True,
                "inference_mode": True, "seed": seed},
        results={"evaluation_s": common.summary(total),
                 "recalibration_s": common.summary(recal),
                 "accuracy_s": common.summary(acc),
                 "bn_reset_overhead_s": common.summary(overhead),
                 "eval_batch_size_sweep": {
                     str(bs): {"evaluation_s": common.summary(t),
                               "evals_per_min": common.rounded(60.0 / sweep_medians[bs], 2)}
                     for bs, t in sweep.items()},
                 "best_eval_batch_size": best,
                 "supernet_vs_standalone": {
                     "supernet_s": common.summary(diag["supernet"]), "standalone_s": common.summary(diag["standalone"]),
                     "ratio": common.rounded(diag_medians["supernet"] / diag_medians["standalone"])},
                 "channels_last_vs_contiguous": {
                     "channels_last_s": common.summary(diag["supernet"]),
                     "contiguous_s": common.summary(diag["supernet_contiguous"]),
                     "speedup": common.rounded(diag_medians["supernet_contiguous"] / diag_medians["supernet"])}},
        load_before=load_before,
        started=started,
        notes=["untrained supernet weights: the cost of an evaluation does not depend on the weights",
               "bn_reset_overhead_s is recalibrate_bn with no batches: resetting every BatchNorm of the supernet"],
    )
