"""How much the table can be trusted: its own seed-to-seed agreement and per-architecture noise."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict


def by_architecture(rows: list[dict]) -> dict[str, dict[int, float]]:
    """{genotype: {seed: test accuracy}} from build rows."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        out[r["genotype"]][int(r["seed"])] = float(r["test_accuracy"])
    return dict(out)


def seed_agreement(accuracy: dict[str, dict[int, float]], keys: list[str] | None = None) -> dict:
    """Kendall tau-b between every pair of seeds over the architectures that have both (restricted to `keys`
    if given): the mean over seed pairs, each pair's value and how many architectures it covers."""
    from nasviz.analysis import kendall_tau_b  # numpy: imported when a table is measured, not at start-up

    keys = list(accuracy) if keys is None else keys
    seeds = sorted({s for k in keys for s in accuracy.get(k, {})})
    pairs = {}
    for a, b in itertools.combinations(seeds, 2):
        common = [k for k in keys if a in accuracy.get(k, {}) and b in accuracy.get(k, {})]
        if len(common) >= 3:
            tau = kendall_tau_b([accuracy[k][a] for k in common], [accuracy[k][b] for k in common])
            pairs[f"{a}-{b}"] = {"tau_b": tau, "architectures": len(common)}
    taus = [p["tau_b"] for p in pairs.values() if p["tau_b"] is not None]
    return {"tau_b": statistics.fmean(taus) if taus else None, "pairs": pairs}


def seed_spread(accuracy: dict[str, dict[int, float]]) -> dict:
    """Per-architecture standard deviation over seeds (architectures with >= 2 seeds): median, mean, max."""
    sds = [statistics.stdev(v.values()) for v in accuracy.values() if len(v) >= 2]
    if not sds:
        return {"architectures": 0, "median_sd": None, "mean_sd": None, "max_sd": None}
    return {"architectures": len(sds), "median_sd": statistics.median(sds), "mean_sd": statistics.fmean(sds),
            "max_sd": max(sds)}


def quality(rows: list[dict], top_fraction: float = 0.10) -> dict:
    """Seed-to-seed tau-b overall and inside the top `top_fraction` of seed 0, and the seed spread."""
    accuracy = by_architecture(rows)
    seed0 = {k: v[0] for k, v in accuracy.items() if 0 in v}
    ranked = sorted(seed0, key=lambda k: -seed0[k])
    top = ranked[: max(1, round(top_fraction * len(ranked)))]
    multi = [k for k in accuracy if len(accuracy[k]) >= 2]
    return {
        "architectures": len(accuracy),
        "trainings": len(rows),
        "multi_seed_architectures": len(multi),
        "seed_tau_b": seed_agreement(accuracy),
        "top_seed_tau_b": seed_agreement(accuracy, top),
        "top_fraction": top_fraction,
        "seed_sd": seed_spread(accuracy),
        "seed0_accuracy": {"min": min(seed0.values()), "median": statistics.median(seed0.values()),
                           "max": max(seed0.values())} if seed0 else None,
    }
