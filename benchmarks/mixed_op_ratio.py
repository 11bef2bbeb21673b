"""mixed-op-ratio: single-path supernet train step / DARTS-style mixed-operation supernet train step.

Same channels, cells, batch and process, interleaved. The single-path step is the engine's
(`nasviz.train.steps.train_steps`, a new random path every step); the mixed supernet (`benchmarks.darts_mixed`) runs
every operation on every edge. Its step is measured two ways:

- `weights`: forward, backward and an SGD step of the weights only (the cheapest a DARTS step can be; the
  figure uses this one, so it is the conservative comparison);
- `first_order`: DARTS's first-order step, an Adam step of the architecture parameters on a second batch and
  then the weight step (DARTS's second-order step costs more again).

Goal: single / mixed(weights) <= 0.20.
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import common

GOAL = 0.20


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    rounds: int | None = None,
    paths_per_round: int | None = None,
    channels: int | None = None,
    layers: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    from benchmarks.darts_mixed import MixedNetwork
    from nasviz.search.config import SearchConfig
    from nasviz.space.genotypes import sample_genotype
    from nasviz.space.supernet import Supernet
    from nasviz.train.steps import prepare_model

    started, load_before = common.now(), common.loadavg()
    preset = SearchConfig.from_preset("quick")
    channels, layers, batch_size = common.network_size(tiny, channels, layers, batch_size)
    rounds = rounds or (1 if tiny else 3 if quick else 8)
    paths_per_round = paths_per_round or (1 if tiny else 2 if quick else 3)

    device = torch.device("cpu")
    data = common.fashion_mnist()
    x, y = common.fixed_batch(batch_size, seed, device)
    x_val, y_val = common.fixed_batch(batch_size, seed + 1, device)
    torch.manual_seed(seed)
    supernet = prepare_model(Supernet(data.shape[0], data.num_classes, channels, layers), device)
    super_opt = common.sgd(supernet, preset.lr, preset.momentum, preset.weight_decay)
    mixed = prepare_model(MixedNetwork(data.shape[0], data.num_classes, channels, layers), device)
    weights = mixed.weights()
    mixed_opt = torch.optim.SGD(weights, lr=preset.lr, momentum=preset.momentum,
                                weight_decay=preset.weight_decay)
    arch_opt = torch.optim.Adam(mixed.arch_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    rng = random.Random(seed)

    def single() -> list[float]:  # a new random path every step
        return common.engine_steps(supernet, (x, y), super_opt, lambda: sample_genotype(rng), paths_per_round + 1,
                                   preset.grad_clip)

    def weight_step() -> None:
        loss = F.cross_entropy(mixed(x), y)
        mixed_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(weights, preset.grad_clip)
        mixed_opt.step()
        loss.item()

    def first_order() -> None:
        arch_opt.zero_grad(set_to_none=True)
        F.cross_entropy(mixed(x_val), y_val).backward()
        arch_opt.step()
        weight_step()

    single_times: list[float] = []
    times = {"weights": [], "first_order": []}
    mixed.train()
    single(), weight_step(), first_order()  # warm-up round, untimed
    for r in range(rounds):
        order = ["single", "weights", "first_order"]
        shift = r % 3
        for name in order[shift:] + order[:shift]:
            if name == "single":
                single_times += single()
            else:
                times[name].append(common.timed(weight_step if name == "weights" else first_order))

    s, w, fo = (common.median(v) for v in (single_times, times["weights"], times["first_order"]))
    value = common.rounded(s / w)
    return common.result(
        "mixed-op-ratio",
        figure="single_path_step / mixed_op_step (weights only)",
        value=value,
        unit="ratio of medians",
        goal=f"<= {GOAL}",
        met=value <= GOAL,
        inputs={"dataset": "fashion-mnist", "input": list(data.shape), "channels": channels, "layers": layers,
                "batch_size": batch_size, "rounds": rounds, "single_path_steps_per_round": paths_per_round,
                "channels_last": True, "seed": seed,
                "supernet_params": sum(p.numel() for p in supernet.parameters()),
                "mixed_params": sum(p.numel() for p in mixed.parameters())},
        results={"single_path_step_s": common.summary(single_times),
                 "mixed_weights_step_s": common.summary(times["weights"]),
                 "mixed_first_order_step_s": common.summary(times["first_order"]),
                 "ratio_vs_weights_step": value,
                 "ratio_vs_first_order_step": common.rounded(s / fo)},
        load_before=load_before,
        started=started,
        notes=["the single-path step draws a new random path every step (step time varies ~2.5x by path); it is "
               "timed as in step-ratio, between consecutive steps of one nasviz.train.steps.train_steps call",
               "the mixed supernet is benchmarks/darts_mixed.py, built from nasviz.space.ops.make_op"],
    )
