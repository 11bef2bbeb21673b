"""Check a latency profile against whole networks: export random networks of its space, time each end to end with
the profile's runtime, threads and batch, and compare with the sum the profile predicts (and with FLOPs)."""

from __future__ import annotations

import datetime
import random
import statistics
import time
from typing import Any

import torch
from scipy import stats
from tqdm.auto import tqdm

from nasviz.errors import ConfigError
from nasviz.latency import runtime as rt
from nasviz.latency.profile import Profile, breakdown, predict
from nasviz.space.genotypes import Genotype, get_space
from nasviz.space.network import SearchNetwork, count_flops, count_params


def random_genotypes(space_name: str, n: int, seed: int) -> list[Genotype]:
    """`n` distinct genotypes of the space, drawn uniformly with `seed`."""
    space, rng = get_space(space_name), random.Random(seed)
    out: dict[str, Genotype] = {}
    for _ in range(100 * n):
        g = space.sample(rng)
        out.setdefault(space.key(g), g)
        if len(out) == n:
            break
    return list(out.values())


def network(genotype: Genotype, profile: Profile, seed: int = 0) -> SearchNetwork:
    """`genotype`'s search-width network of the profile's layout, eval mode, weights drawn from `seed`."""
    lay = profile.layout
    torch.manual_seed(seed)
    return SearchNetwork(genotype, lay.in_channels, lay.num_classes, lay.channels, lay.layers).eval()


def measure(genotypes: list[Genotype], profile: Profile, *, warmup: int = 10, repeats: int = 30,
            progress: bool = False) -> list[dict[str, float]]:
    """Each genotype's network timed end to end (median and spread, ms per call) with the profile's runtime,
    threads and batch; networks timed interleaved (see `nasviz.latency.runtime.time_interleaved`)."""
    lay = profile.layout
    shape = ((lay.in_channels, lay.height, lay.width),)
    with rt.torch_threads(profile.threads):
        runners = {str(i): rt.runner(network(g, profile), shape, profile.runtime, profile.batch, profile.threads)
                   for i, g in enumerate(tqdm(genotypes, desc=f"exporting ({profile.runtime})", disable=not progress,
                                              leave=False))}
        timed = rt.time_interleaved(runners, warmup, repeats, progress, desc=f"timing {len(runners)} networks")
    return [timed[str(i)] for i in range(len(genotypes))]


def scale_fit(pred: list[float], meas: list[float]) -> float:
    """The factor s minimising sum (s * predicted - measured)^2: least squares through the origin."""
    return sum(p * m for p, m in zip(pred, meas, strict=True)) / sum(p * p for p in pred)


def calibration(pred: list[float], meas: list[float]) -> dict[str, float]:
    """One factor fitted on all networks ("scale"), and the error it leaves judged fairly: two-fold, each half's
    predictions scaled by the factor fitted on the other half."""
    halves = (range(0, len(pred), 2), range(1, len(pred), 2))
    errors = []
    for fit_on, judge in (halves, halves[::-1]):
        s = scale_fit([pred[i] for i in fit_on], [meas[i] for i in fit_on])
        errors += [abs(s * pred[i] - meas[i]) / meas[i] for i in judge]
    return {"scale": scale_fit(pred, meas), "two_fold_mape_percent": 100 * statistics.fmean(errors)}


def calibrated(profile: Profile, report: dict[str, Any]) -> Profile:
    """A copy of `profile` whose predictions are multiplied by the scale `report` (a `validate` report) fitted."""
    import dataclasses

    fit = report["calibration"]
    return dataclasses.replace(profile, scale=profile.scale * fit["scale"], calibration={
        "scale_fitted": fit["scale"], "two_fold_mape_percent": fit["two_fold_mape_percent"],
        "networks": report["networks_measured"], "spearman_rho": report["spearman_rho"],
        "validated": report["created"]})


def validate(profile: Profile, n: int = 50, seed: int = 0, *, warmup: int = 10, repeats: int = 30,
             progress: bool = False) -> dict[str, Any]:
    """Predicted against measured latency of `n` random networks: Spearman's rho, mean absolute percentage error,
    and FLOPs' (and parameters') rho with measured latency beside it; every network's numbers in "networks"."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 3:
        raise ConfigError(f"n={n!r} is out of range; allowed: an integer >= 3 (networks to measure)", setting="n")
    start = time.perf_counter()
    genotypes = random_genotypes(profile.layout.space, n, seed)
    measured = measure(genotypes, profile, warmup=warmup, repeats=repeats, progress=progress)
    rows = []
    lay = profile.layout
    for g, m in zip(genotypes, measured, strict=True):
        net = network(g, profile)
        terms = breakdown(g, profile)
        rows.append({"genotype": str(g), "predicted_ms": predict(g, profile),
                     "measured_ms": m[f"{profile.statistic}_ms"], "measured_median_ms": m["median_ms"],
                     "measured_min_ms": m["min_ms"], "measured_spread_ms": m["spread_ms"], "ops_ms": terms["ops"],
                     "flops": count_flops(net, (lay.in_channels, lay.height, lay.width)),
                     "params": count_params(net)})
    pred = [r["predicted_ms"] for r in rows]
    meas = [r["measured_ms"] for r in rows]
    errors = [abs(p - m) / m for p, m in zip(pred, meas, strict=True)]
    fit = stats.linregress(pred, meas)
    return {
        "networks_measured": len(rows),
        "spearman_rho": float(stats.spearmanr(pred, meas).statistic),
        "mape_percent": 100 * statistics.fmean(errors),
        "median_ape_percent": 100 * statistics.median(errors),
        "mean_signed_error_percent": 100 * statistics.fmean((p - m) / m for p, m in zip(pred, meas, strict=True)),
        "flops_spearman_rho": float(stats.spearmanr([r["flops"] for r in rows], meas).statistic),
        "params_spearman_rho": float(stats.spearmanr([r["params"] for r in rows], meas).statistic),
        "measured_ms_range": [min(meas), max(meas)],
        "linear_fit": {"slope": float(fit.slope), "intercept_ms": float(fit.intercept), "r": float(fit.rvalue)},
        "calibration": calibration(pred, meas),
        "profile": {"layout": profile.layout.to_dict(), "runtime": profile.runtime, "threads": profile.threads,
                    "batch": profile.batch, "created": profile.created, "machine": profile.machine},
        "machine": rt.machine(profile.runtime, profile.threads),
        "timing": {"warmup": warmup, "repeats": repeats, "seed": seed, "statistic": profile.statistic,
                   "wall_s": round(time.perf_counter() - start, 1)},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "networks": rows,
    }
