"""ranking: does supernet fitness rank architectures like from-scratch training does, with and without
fine-tuning?

1. Run one SFT-GA search (seed fixed), keeping a copy of the supernet right after the warm-up.
2. Take architectures from the search's final region (the last generation's parents and offspring, spread
   evenly over their fitness ranks) plus random ones from the whole space.
3. Score each with inherited weights (`nasviz.train.fitness`, the engine's BN recalibration + accuracy on the
   fitness images) under three supernets:
   - `finetuned`: the search's final supernet (warm-up + fine-tuning on the search region);
   - `warmup_only`: the supernet after the warm-up (no fine-tuning; what GA without fine-tuning uses);
   - `uniform_extra`: the warm-up supernet trained for as many more steps as the fine-tuning took, but on
     uniformly sampled paths (a control: "more training" without "focused training").
4. Train each architecture from scratch (`nasviz.scratch.train_from_scratch`, small settings) for test accuracy.
5. Kendall tau (scipy.stats.kendalltau) and top-k overlap between each fitness and the test accuracy, over all
   architectures, the region ones and the random ones. The seed-to-seed spread of from-scratch accuracy of one
   architecture is measured too: differences smaller than it are noise.
"""

from __future__ import annotations

import copy
import random
import warnings
from typing import Any

import numpy as np

from benchmarks import common

SETS = ("finetuned", "warmup_only", "uniform_extra")


def spread(items: list, n: int) -> list:
    """`n` items spread evenly over a list sorted best-first (all of them if there are at most `n`)."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def top_k_overlap(a: list[float], b: list[float], k: int) -> float:
    """|top-k of a  intersect  top-k of b| / k (ties broken by index)."""
    top = lambda v: set(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])  # noqa: E731
    return len(top(a) & top(b)) / k


def correlation(fit: list[float], acc: list[float], k: int) -> dict[str, Any]:
    from scipy.stats import kendalltau, spearmanr

    if len(fit) < 2:
        return {"n": len(fit), "kendall_tau": None, "p_value": None, "spearman": None, "top_k": None}
    with warnings.catch_warnings():  # a constant input gives NaN (reported as null), not a warning
        warnings.simplefilter("ignore")
        tau, p = kendalltau(fit, acc)
        rho = spearmanr(fit, acc)[0]
    k = min(k, len(fit))
    return {"n": len(fit), "kendall_tau": common.rounded(float(tau)), "p_value": common.rounded(float(p)),
            "spearman": common.rounded(float(rho)), "k": k, "top_k_overlap": common.rounded(top_k_overlap(fit, acc, k))}


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seed: int = 0,
    preset: str | None = None,
    search: dict[str, Any] | None = None,
    region: int | None = None,
    random_archs: int | None = None,
    k: int | None = None,
    scratch: dict[str, Any] | None = None,
    noise_repeats: int | None = None,
) -> dict[str, Any]:
    from nasviz.config import SearchConfig
    from nasviz.sampling import uniform_sampler
    from nasviz.search import Search
    from nasviz.space import Genotype, sample_genotype
    from nasviz.supernet import Supernet
    from nasviz.train import fitness, prepare_model, train_steps

    started, load_before = common.now(), common.loadavg()
    kind = common.size(quick, tiny)
    preset = preset or ("quick" if kind == "full" else "smoke")
    search_settings = {**(common.TINY_SEARCH if tiny else {}), **(search or {})}
    region = region or {"full": 8, "quick": 4, "tiny": 2}[kind]
    random_archs = random_archs or {"full": 8, "quick": 4, "tiny": 2}[kind]
    k = k or {"full": 4, "quick": 2, "tiny": 1}[kind]
    scratch = {**common.SCRATCH[kind], **(scratch or {})}
    noise_repeats = noise_repeats if noise_repeats is not None else {"full": 2, "quick": 1, "tiny": 1}[kind]

    # 1. the search, with a copy of the warm-up state
    config = SearchConfig.from_preset(preset, seed=seed, device="cpu", method="sft-ga", **search_settings)
    engine = Search(config)
    first = engine.warmup()
    warm_state = copy.deepcopy(engine.state_dict())
    rows = [first]
    while not engine.done:
        rows.append(engine.step())
    finetune_steps = engine.steps - engine.warmup_done

    # 2. architectures: the final region spread over its fitness ranks, plus random ones
    last = sorted(rows[-1]["individuals"], key=lambda i: -i["fitness"])
    chosen = [Genotype.parse(i["genotype"]) for i in spread(last, region)]
    keys = {Genotype.parse(i["genotype"]).key() for i in last}
    rng = random.Random(seed + 7919)
    randoms: list[Genotype] = []
    while len(randoms) < random_archs:
        g = sample_genotype(rng)
        if g.key() not in keys:
            keys.add(g.key())
            randoms.append(g)
    archs = [("region", g) for g in chosen] + [("random", g) for g in randoms]

    # 3. fitness under the three supernets
    def supernet_from(state: dict):
        net = Supernet(engine.data.shape[0], engine.data.num_classes, config.channels, config.layers)
        net.load_state_dict(state)
        return prepare_model(net, engine.device)

    control = Search(config)
    control.load_state_dict(copy.deepcopy(warm_state))
    for group in control.optimizer.param_groups:
        group["lr"] = config.finetune_lr or config.lr
    if finetune_steps:
        train_steps(control.supernet, control.stream.next, control.optimizer,
                    uniform_sampler(random.Random(seed + 104729)), finetune_steps, phase="control",
                    grad_clip=config.grad_clip)
    models = {"finetuned": engine.supernet, "warmup_only": supernet_from(warm_state["supernet"]),
              "uniform_extra": control.supernet}
    scores = {name: [fitness(m, g, engine.calibration, engine.fitness_batches) for _, g in archs]
              for name, m in models.items()}

    # 4. from-scratch accuracy (+ the seed-to-seed spread of one architecture)
    cache: dict = {}
    trained = [common.scratch_accuracy(g, engine.data, scratch, cache) for _, g in archs]
    accuracy = [t["test_accuracy"] for t in trained]
    repeats = [accuracy[0]] + [
        common.scratch_accuracy(archs[0][1], engine.data, {**scratch, "seed": scratch["seed"] + 1 + r}, cache)[
            "test_accuracy"] for r in range(noise_repeats)]

    # 5. correlations
    groups = {"all": list(range(len(archs))),
              "region": [i for i, (src, _) in enumerate(archs) if src == "region"],
              "random": [i for i, (src, _) in enumerate(archs) if src == "random"]}
    stats = {name: {group: correlation([scores[name][i] for i in idx], [accuracy[i] for i in idx],
                                       k if group == "all" else max(1, k // 2))
                    for group, idx in groups.items()}
             for name in SETS}
    tau_ft, tau_w = stats["finetuned"]["all"]["kendall_tau"], stats["warmup_only"]["all"]["kendall_tau"]
    met = None if tau_ft is None or tau_w is None else tau_ft > tau_w
    return common.result(
        "ranking",
        figure="Kendall tau, supernet fitness (fine-tuned) vs from-scratch test accuracy",
        value=tau_ft,
        unit="tau over all architectures",
        goal="tau with fine-tuning > tau without (warm-up only)",
        met=met,
        inputs={"size": kind, "preset": preset, "search_overrides": search_settings, "seed": seed,
                "region_architectures": len(chosen), "random_architectures": len(randoms), "k": k,
                "scratch": scratch, "noise_repeats": noise_repeats, "warmup_steps": engine.warmup_done,
                "finetune_steps": finetune_steps, "generations": config.generations,
                "fitness_images": config.fitness_images},
        results={"kendall_tau": {name: stats[name]["all"]["kendall_tau"] for name in SETS},
                 "top_k_overlap": {name: stats[name]["all"]["top_k_overlap"] for name in SETS},
                 "by_group": stats,
                 "scratch_accuracy": {"mean": common.rounded(float(np.mean(accuracy))),
                                      "min": common.rounded(min(accuracy)), "max": common.rounded(max(accuracy))},
                 "scratch_seed_spread": {"genotype": str(archs[0][1]), "accuracies": repeats,
                                         "std": common.rounded(float(np.std(repeats, ddof=1)))
                                         if len(repeats) > 1 else None},
                 "architectures": [
                     {"source": src, "genotype": str(g), "test_accuracy": trained[i]["test_accuracy"],
                      "params": trained[i]["params"], **{name: common.rounded(scores[name][i]) for name in SETS}}
                     for i, (src, g) in enumerate(archs)],
                 "search_best": {"genotype": str(engine.best[0]), "fitness": engine.best[1]},
                 "search_wall_s": common.rounded(engine.wall_time_s, 1)},
        load_before=load_before,
        started=started,
        notes=["fitness is accuracy on the search's fitness images with inherited weights after BN recalibration",
               "tau between values measured on few hundred/thousand images is noisy: compare it with "
               "scratch_seed_spread before reading much into small differences"],
    )


# --- how ranking depends on the fitness and BN-recalibration images -------------------------------------------
def fitness_sweep(engine, genotypes: list, fitness_images: list[int], bn_batches: list[int], *,
                  precision: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Fitness of every genotype under `engine`'s supernet (a `nasviz.search.Search` with a supernet) for every
    (fitness images, BN batches) pair: the images are nested seeded subsets of the engine's fitness part (never
    trained on) and the BN batches nested prefixes of its weight part, as the engine recalibrates. Each genotype
    is recalibrated once per BN setting and its per-image correctness then read off for every fitness size.

    Returns {"fitness_images", "bn_batches", "fitness": {"b": {"f": [one value per genotype]}}, "seconds": {"b":
    s}}; `sweep_agreement` compares the settings with a reference (the table's accuracy, or the largest setting)."""
    import torch

    from nasviz.batches import eval_batches, split_indices
    from nasviz.precision import autocast
    from nasviz.train import recalibrate_bn

    c, d, model = engine.config, engine.data, engine.supernet
    precision = precision or engine.precision
    weight, fit = split_indices(len(d.train_labels), c.weight_images, c.fitness_images, c.seed)
    if max(fitness_images) > len(fit) or min(fitness_images) < 1:
        raise ValueError(f"fitness_images must lie in 1..{len(fit)} (the engine's fitness part); "
                         f"got {sorted(fitness_images)}")
    if max(bn_batches) * c.batch_size > len(weight) or min(bn_batches) < 1:
        raise ValueError(f"bn_batches must lie in 1..{len(weight) // c.batch_size}; got {sorted(bn_batches)}")
    fit = fit[torch.randperm(len(fit), generator=torch.Generator().manual_seed(seed))][: max(fitness_images)]
    evaluation = list(eval_batches(d.train_images[fit], d.train_labels[fit], c.eval_batch_size, d.mean, d.std,
                                   engine.device, channels_last=True))
    calibration = list(eval_batches(d.train_images[weight[: max(bn_batches) * c.batch_size]],
                                    d.train_labels[weight[: max(bn_batches) * c.batch_size]], c.batch_size, d.mean,
                                    d.std, engine.device, channels_last=True))
    out: dict[str, Any] = {"fitness_images": sorted(fitness_images), "bn_batches": sorted(bn_batches),
                           "precision": precision, "fitness": {}, "seconds": {}}
    for b in sorted(bn_batches):
        start = common.now()
        values: dict[str, list[float]] = {str(f): [] for f in sorted(fitness_images)}
        for g in genotypes:
            recalibrate_bn(model, g, calibration[:b], precision)
            with torch.inference_mode():
                correct = []
                for x, y in evaluation:
                    with autocast(engine.device, precision):
                        correct.append(model(x, g).argmax(1) == y)
                hits = torch.cat(correct).float().cumsum(0)
            for f in sorted(fitness_images):
                values[str(f)].append(float(hits[f - 1]) / f)
        out["fitness"][str(b)] = values
        out["seconds"][str(b)] = common.rounded(common.now() - start, 3)
    return out


def sweep_agreement(sweep: dict[str, Any], reference: list[float]) -> dict[str, dict[str, float | None]]:
    """Kendall tau-b (`nasviz.analysis.kendall_tau_b`) of each setting of a `fitness_sweep` with `reference` (one
    value per genotype, e.g. the table's accuracy): {"b": {"f": tau}}."""
    from nasviz.analysis import kendall_tau_b

    return {b: {f: kendall_tau_b(values, reference) for f, values in by_f.items()}
            for b, by_f in sweep["fitness"].items()}
