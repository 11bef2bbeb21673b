"""ranking: does fine-tuning improve the supernet's ranking where the search is looking? Judged by the table.

Per seed (the seed jobs of `benchmarks/evidence.py`): the warm-up supernet (A), the SFT-GA search's fine-tuned
supernet (FT) and an equal-compute control (C: A trained the same extra steps, in the same phases, on uniformly
drawn paths) score three fixed sets of `mini` architectures on held-out images — the table's top 10 %, the
search's final region with one-gene neighbours, and a fixed random sample. Per set and supernet: Kendall tau-b
against the table's mean accuracy, the "sparse" tau-b (the table rounded to its seed noise, so differences
within the noise are ties), precision@5 and the regret of the supernet's top pick. Over seeds: means with 95 %
bootstrap intervals (scipy), and the paired differences FT - C and FT - A with a two-level bootstrap (seeds, and
inside each replicate the table's seeds of every multi-seed architecture). Beside them, the table's own
seed-to-seed tau-b in the same set: the ceiling no supernet can beat.

Also measured on FT and the region set: how tau-b depends on the number of fitness images (prefixes of the
held-out images) and of BatchNorm recalibration batches.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from benchmarks import common, evidence

K = 5
"""precision@K."""


def set_statistics(scores: dict[str, float], table, step: float) -> dict[str, float | None]:
    """tau-b, sparse tau-b, precision@K and top-pick regret of one supernet's scores on one set."""
    from nasviz.analysis import kendall_tau_b, precision_at_k, regret, rounded_to

    keys = list(scores)
    s = [scores[k] for k in keys]
    t = [table.accuracy(k) for k in keys]
    return {"tau_b": kendall_tau_b(s, t), "sparse_tau_b": kendall_tau_b(s, rounded_to(t, step)),
            "precision_at_5": precision_at_k(s, t, min(K, len(keys))), "regret": regret(s, t)}


def ceiling(keys: list[str], table) -> float | None:
    """The table's own seed-to-seed tau-b (mean over seed pairs) among `keys` with at least two seeds."""
    from nasviz.table.quality import seed_agreement

    accuracy = {k: dict(table.entries[k].accuracy_by_seed) for k in keys}
    return seed_agreement(accuracy, [k for k in keys if len(accuracy[k]) >= 2])["tau_b"]


def two_level_difference(records: list[dict], table, set_name: str, a: str, b: str, *, replicates: int = 400,
                         seed: int = 0) -> dict[str, float]:
    """Mean over seeds of tau_b(a) - tau_b(b) on `set_name`, with a 95 % interval from a two-level bootstrap:
    resample the seeds, and in each replicate redraw every multi-seed architecture's truth as the mean of a
    resample of its table seeds (the table's noise is part of the uncertainty)."""
    from nasviz.analysis import kendall_tau_b

    rng = np.random.default_rng(seed)

    def diff(record: dict, truth: dict[str, float]) -> float:
        keys = record["sets"][set_name]
        t = [truth[k] for k in keys]
        ta = kendall_tau_b([record["scores"][a][set_name][k] for k in keys], t)
        tb = kendall_tau_b([record["scores"][b][set_name][k] for k in keys], t)
        return (ta or 0.0) - (tb or 0.0)

    keys = sorted({k for r in records for k in r["sets"][set_name]})
    mean_truth = {k: table.accuracy(k) for k in keys}
    point = float(np.mean([diff(r, mean_truth) for r in records]))
    values = []
    for _ in range(replicates):
        truth = {}
        for k in keys:
            seeds = list(table.entries[k].accuracy_by_seed.values())
            truth[k] = float(np.mean(rng.choice(seeds, size=len(seeds)))) if len(seeds) > 1 else seeds[0]
        picked = rng.integers(0, len(records), size=len(records))
        values.append(np.mean([diff(records[i], truth) for i in picked]))
    low, high = np.percentile(values, [2.5, 97.5])
    return {"value": point, "low": float(low), "high": float(high), "n": len(records)}


def summarize(records: list[dict], table) -> dict[str, Any]:
    """Per-seed statistics and their summaries over seeds (see the module docstring)."""
    from nasviz.analysis import kendall_tau_b, mean_with_interval, paired_difference

    step = table.noise["seed_sd"]["median_sd"] or 0.001
    per_seed = []
    for r in records:
        row: dict[str, Any] = {"seed": r["seed"], "cpu_s": r["cpu_s"]}
        for set_name in evidence.SETS:
            row[set_name] = {net: set_statistics(r["scores"][net][set_name], table, step)
                             for net in evidence.SUPERNETS}
            row[set_name]["ceiling_tau_b"] = ceiling(r["sets"][set_name], table)
        truth = {k: table.accuracy(k) for k in r["sets"]["region"]}
        keys = list(truth)
        row["fitness_images"] = {n: kendall_tau_b([r["fitness_images_sweep"][k][n] for k in keys],
                                                  [truth[k] for k in keys])
                                 for n in sorted(next(iter(r["fitness_images_sweep"].values())), key=int)}
        row["bn_batches"] = {n: kendall_tau_b([v[k] for k in keys], [truth[k] for k in keys])
                             for n, v in sorted(r["bn_batches_sweep"].items(), key=lambda item: int(item[0]))}
        per_seed.append(row)

    def est(values: list[float | None]) -> dict | None:
        values = [v for v in values if v is not None]
        return mean_with_interval(values).to_json() if values else None

    summary: dict[str, Any] = {}
    for set_name in evidence.SETS:
        block: dict[str, Any] = {}
        for net in evidence.SUPERNETS:
            block[net] = {stat: est([row[set_name][net][stat] for row in per_seed])
                          for stat in ("tau_b", "sparse_tau_b", "precision_at_5", "regret")}
        block["ceiling_tau_b"] = est([row[set_name]["ceiling_tau_b"] for row in per_seed])
        for a, b in (("FT", "C"), ("FT", "A"), ("C", "A")):
            x = [row[set_name][a]["tau_b"] or 0.0 for row in per_seed]
            y = [row[set_name][b]["tau_b"] or 0.0 for row in per_seed]
            block[f"{a} - {b}"] = {"tau_b": paired_difference(x, y).to_json(),
                                   "tau_b_two_level": two_level_difference(records, table, set_name, a, b)}
        summary[set_name] = block
    sweep_n = list(per_seed[0]["fitness_images"]) if per_seed else []
    summary["fitness_images_tau_b"] = {n: est([row["fitness_images"][n] for row in per_seed]) for n in sweep_n}
    summary["bn_batches_tau_b"] = {n: est([row["bn_batches"][n] for row in per_seed])
                                   for n in (per_seed[0]["bn_batches"] if per_seed else {})}
    return {"summary": summary, "per_seed": per_seed}


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seeds: list[int] | int | None = None,
    runs_file: str | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from nasviz.table import load

    started, load_before = common.now(), common.loadavg()
    size = common.size(quick, tiny)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds if seeds is not None else range(
        {"full": 15, "quick": 3, "tiny": 1}[size]))
    runs_file = runs_file or f"benchmarks/results/evidence/runs-{size}.jsonl"
    records = evidence.records(seeds, size, runs_file, search)
    table = load((search or {}).get("table") or evidence.TABLE)
    stats = summarize(records, table)
    region = stats["summary"]["region"]
    value = region["FT - C"]["tau_b_two_level"]["value"]
    low = region["FT - C"]["tau_b_two_level"]["low"]
    return common.result(
        "ranking",
        figure="Kendall tau-b vs the table on the search region: fine-tuned (FT) minus equal-compute control (C)",
        value=common.rounded(value),
        unit="tau-b difference, mean over seeds (two-level 95 % interval in results)",
        goal="> 0 with the interval above 0 (fine-tuning ranks the region better than equal uniform training)",
        met=bool(low > 0),
        inputs={"size": size, "seeds": seeds, "runs_file": runs_file, "search_overrides": search or {},
                "sizes": {k: v for k, v in evidence.SIZES[size].items()}, "table": table.name,
                "table_seed_sd_median": table.noise["seed_sd"]["median_sd"]},
        results={**stats, "cpu_s_per_seed": statistics.fmean(r["cpu_s"] for r in records)},
        load_before=load_before,
        started=started,
        notes=["scores: BN recalibration on the search's calibration batches, accuracy on held-out training "
               "images that neither the fitness nor the recalibration uses",
               "ceiling_tau_b: the table's own seed-to-seed tau-b in the same set; no supernet can beat it",
               "sets: top = the table's top 10 %; region = the SFT-GA search's final P u Q plus one-gene "
               "neighbours of its survivors; random = a fixed random sample (the same for every seed)"],
    )


# --- how ranking depends on the fitness and BN-recalibration images -------------------------------------------
def fitness_sweep(engine, genotypes: list, fitness_images: list[int], bn_batches: list[int], *,
                  precision: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Fitness of every genotype under `engine`'s supernet (a `nasviz.search.loop.Search` with a supernet) for every
    (fitness images, BN batches) pair: the images are nested seeded subsets of the engine's fitness part (never
    trained on) and the BN batches nested prefixes of its weight part, as the engine recalibrates. Each genotype
    is recalibrated once per BN setting and its per-image correctness then read off for every fitness size.

    Returns {"fitness_images", "bn_batches", "fitness": {"b": {"f": [one value per genotype]}}, "seconds": {"b":
    s}}; `sweep_agreement` compares the settings with a reference (the table's accuracy, or the largest setting)."""
    import torch

    from nasviz.data.batches import eval_batches, split_indices
    from nasviz.train.precision import autocast
    from nasviz.train.steps import recalibrate_bn

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
