"""step-ratio: supernet single-path train step / the same genotype's standalone network train step.

Both run the engine's own step (`nasviz.train.steps.train_steps`, one step: forward, cross-entropy, backward,
gradient clipping, SGD with momentum and weight decay) on the same batch, in the same process, interleaved.
The standalone network is `nasviz.space.network.SearchNetwork` with the supernet's path weights copied in
(`copy_path_weights`), prepared like the engine does (`prepare_model`: channels_last). The figure is the median
over random paths of (median supernet step / median standalone step) for that path; goal <= 1.10.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from benchmarks import common

GOAL = 1.10


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    paths: int | None = None,
    reps: int | None = None,
    channels: int | None = None,
    layers: int | None = None,
    batch_size: int | None = None,
    block_steps: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    from nasviz.search.config import SearchConfig
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.network import SearchNetwork, copy_path_weights
    from nasviz.space.supernet import Supernet
    from nasviz.train.steps import prepare_model

    started, load_before = common.now(), common.loadavg()
    preset = SearchConfig.from_preset("quick")
    channels, layers, batch_size = common.network_size(tiny, channels, layers, batch_size)
    paths = paths or (1 if tiny else 4 if quick else 12)
    reps = reps or (1 if tiny else 3 if quick else 6)

    device = torch.device("cpu")
    data = common.fashion_mnist()
    x, y = common.fixed_batch(batch_size, seed, device)
    torch.manual_seed(seed)
    supernet = prepare_model(Supernet(data.shape[0], data.num_classes, channels, layers), device)
    super_opt = common.sgd(supernet, preset.lr, preset.momentum, preset.weight_decay)
    rng = random.Random(seed)

    per_path = []
    all_super, all_alone = [], []
    for _ in range(paths):
        genotype = sample_genotype(rng)
        alone = SearchNetwork(genotype, data.shape[0], data.num_classes, channels, layers)
        alone = prepare_model(copy_path_weights(supernet, alone), device)
        alone_opt = common.sgd(alone, preset.lr, preset.momentum, preset.weight_decay)

        def block(model, optimizer, genotype=genotype):
            return common.engine_steps(model, (x, y), optimizer, lambda: genotype, block_steps, preset.grad_clip)

        times = {"supernet": [], "standalone": []}
        fns = {"supernet": lambda: block(supernet, super_opt),
               "standalone": lambda alone=alone, alone_opt=alone_opt: block(alone, alone_opt)}
        for fn in fns.values():  # warm-up block, untimed
            fn()
        for r in range(reps):
            for name in (["supernet", "standalone"] if r % 2 == 0 else ["standalone", "supernet"]):
                times[name] += fns[name]()
        s, a = common.median(times["supernet"]), common.median(times["standalone"])
        all_super += times["supernet"]
        all_alone += times["standalone"]
        per_path.append({"genotype": str(genotype), "supernet_s": common.rounded(s, 5),
                         "standalone_s": common.rounded(a, 5), "ratio": common.rounded(s / a)})

    ratios = [p["ratio"] for p in per_path]
    value = common.rounded(common.median(ratios))
    return common.result(
        "step-ratio",
        figure="supernet_step / standalone_step",
        value=value,
        unit="ratio (median over paths of per-path median ratios)",
        goal=f"<= {GOAL}",
        met=value <= GOAL,
        inputs={"dataset": "fashion-mnist", "input": list(data.shape), "channels": channels, "layers": layers,
                "batch_size": batch_size, "paths": paths, "rounds_per_path": reps, "steps_per_block": block_steps,
                "timed_steps_per_path_and_model": reps * (block_steps - 1), "warmup_blocks": 1,
                "channels_last": True, "optimizer": "SGD(lr=0.05, momentum=0.9, weight_decay=3e-4)",
                "supernet_params": sum(p.numel() for p in supernet.parameters()), "seed": seed},
        results={"ratio_per_path": {"median": value, "min": min(ratios), "max": max(ratios)},
                 "supernet_step_s": common.summary(all_super), "standalone_step_s": common.summary(all_alone),
                 "paths": per_path},
        load_before=load_before,
        started=started,
        notes=["both models run nasviz.train.steps.train_steps on the same fixed batch, in alternating blocks of "
               f"{block_steps} steps; a step's time is the interval between consecutive steps of a block (the "
               "engine trains in chunks, so a block's first step, which also pays model.train(), is not timed)"],
    )
