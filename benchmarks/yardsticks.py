"""yardsticks: how well do zero-cost proxies and plain size rank the `mini` space? Judged by its table.

For every network of the ground-truth table (648 in `mini`) and each proxy of `nasviz.search.proxies` (synflow, naswot,
snip, grad_norm, jacob_cov), the score for proxy seeds 0..S-1: seed s initialises the network and draws the
fixed batch of Fashion-MNIST *training* images (the same batch for every network). The network is the
genotype's search-width network at the size the evidence runs searched (`benchmarks/evidence.py`'s full size:
the quick preset in `mini`, 8 channels, 3 cells, 14 x 14 images). `params` and `flops` are measured once per
network. Scores are appended to a runs file (one JSON line per network and seed) as they are computed, so a
long job resumes where it stopped.

The summary: Kendall tau-b (scipy, variant b) of every proxy and of params and FLOPs against the table's mean
accuracy on the whole space, the table's top 10 %, and the evidence runs' random set and search regions (one
region per evidence seed, read from the evidence runs file); means over proxy seeds with 95 % bootstrap
intervals over proxy seeds (for a region: also over the evidence seeds), beside the supernets' A / FT / C
figures of the `ranking` benchmark and the table's own seed-to-seed ceiling; the share of the table's variance
that FLOPs alone explain (R^2 of FLOPs as a categorical factor and of a linear fit on log FLOPs); and the CPU
seconds per network per proxy (median).
"""

from __future__ import annotations

import gzip
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common, evidence

SIZES: dict[str, dict[str, Any]] = {
    "full": {"seeds": 10, "batch_size": 64, "networks": None},
    "quick": {"seeds": 2, "batch_size": 32, "networks": 30},
    "tiny": {"seeds": 2, "batch_size": 8, "networks": 8},
}
"""Proxy seeds, batch size and networks scored (None: the whole table; else a seeded sample) per size."""

SEEDED = ("synflow", "naswot", "snip", "grad_norm", "jacob_cov")
"""The zero-cost proxies: their scores depend on the seed (initialisation and batch)."""
SIZE_PROXIES = ("params", "flops")
"""The size baselines: measured once per network."""
SETS = ("whole", "top", "region", "random")
EVIDENCE_RUNS = "benchmarks/results/evidence/runs-full.jsonl.gz"
EVIDENCE_RANKING = "benchmarks/results/evidence/ranking.json"


def layout() -> dict[str, Any]:
    """Network size and data of the evidence runs: the search config of `evidence.py`'s full size in `mini`."""
    from nasviz.search.config import SearchConfig

    c = SearchConfig.from_preset(evidence.SIZES["full"]["preset"], **evidence.BASE)
    return {"dataset": c.dataset, "image_size": c.image_size, "channels": c.channels, "layers": c.layers}


def networks(table, count: int | None) -> list[str]:
    """The table's canonical keys, in the table's order; `count` of them drawn by a fixed seed when given."""
    keys = list(table.entries)
    if count is None or count >= len(keys):
        return keys
    chosen = set(random.Random(20261206).sample(keys, count))
    return [k for k in keys if k in chosen]


def read_lines(path: str | Path, key: str) -> dict[tuple[int | None, str], dict]:
    """{(seed, genotype): line} of the lines with settings `key` in the runs file (plain or .gz; none if missing;
    a line torn by a kill is skipped). Seed None: the size line of a network."""
    path = Path(path)
    if not path.exists():
        return {}
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    out = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("key") == key:
            out[(row["seed"], row["genotype"])] = row
    return out


def score_network(genotype, names: tuple[str, ...], *, images, labels, seed: int, lay: dict,
                  data_shape: tuple[int, int, int], num_classes: int) -> tuple[dict[str, float], dict[str, float]]:
    """{proxy: score} and {proxy: CPU seconds} of one network for `names`."""
    from nasviz.search import proxies

    scores, cpu = {}, {}
    for name in names:
        start = time.process_time()
        scores[name] = proxies.score(name, genotype, data_shape=data_shape, num_classes=num_classes,
                                     channels=lay["channels"], layers=lay["layers"], images=images, labels=labels,
                                     seed=seed)
        cpu[name] = round(time.process_time() - start, 5)
    return scores, cpu


def collect(table, keys: list[str], seeds: list[int], batch_size: int, runs_file: str | Path, lay: dict,
            settings_key: str, log=print) -> dict[tuple[int | None, str], dict]:
    """Every (seed, network) line, computing and appending those not yet in `runs_file`: first the size line of
    each network, then the seeded proxies seed by seed (a partial job holds whole seeds first)."""
    from nasviz.data.loading import resized
    from nasviz.search import proxies

    done = read_lines(runs_file, settings_key)
    _end_torn_line(runs_file)
    todo = [(None, k) for k in keys] + [(s, k) for s in seeds for k in keys]
    todo = [t for t in todo if t not in done]
    if not todo:
        return done
    data = resized(common.fashion_mnist(), lay["image_size"]) if lay["image_size"] else common.fashion_mnist()
    batches: dict[int, tuple] = {}
    started = time.process_time()
    for n, (seed, key) in enumerate(todo):
        genotype = table.space.parse(key)
        if seed is None:
            scores, cpu = score_network(genotype, SIZE_PROXIES, images=None, labels=None, seed=0, lay=lay,
                                        data_shape=data.shape, num_classes=data.num_classes)
        else:
            if seed not in batches:
                batches[seed] = proxies.proxy_batch(data, batch_size, seed)
            images, labels = batches[seed]
            scores, cpu = score_network(genotype, SEEDED, images=images, labels=labels, seed=seed, lay=lay,
                                        data_shape=data.shape, num_classes=data.num_classes)
        row = {"key": settings_key, "seed": seed, "genotype": key, "scores": scores, "cpu_s": cpu}
        evidence.append_record(runs_file, {**row, "scores": {k: _finite_or_text(v) for k, v in scores.items()}})
        done[(seed, key)] = row
        if (n + 1) % 200 == 0:
            log(f"{n + 1}/{len(todo)} lines, {time.process_time() - started:.0f} CPU-s")
    return done


def _end_torn_line(path: str | Path) -> None:
    """End a line torn by a kill (the file's last byte is not a newline), so the next line starts cleanly."""
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as f:
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")


def _finite_or_text(value: float) -> float | str:
    """A score as JSON takes it: -inf (a degenerate kernel) is written as the text "-inf"."""
    return value if math.isfinite(value) else str(value)


def read_back(row: dict) -> dict:
    """A line with its scores as floats ("-inf" back to -inf)."""
    return {**row, "scores": {k: float(v) for k, v in row["scores"].items()}}


def evidence_sets(path: str | Path) -> dict[str, Any] | None:
    """The sets the evidence runs scored: {"top": keys, "random": keys, "region": {seed: keys}} (None when the
    evidence runs file is missing)."""
    path = Path(path)
    if not path.exists():
        return None
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    records = [r for r in records if "sets" in r]
    if not records:
        return None
    return {"top": records[0]["sets"]["top"], "random": records[0]["sets"]["random"],
            "region": {int(r["seed"]): r["sets"]["region"] for r in records}, "seeds": sorted(int(r["seed"]) for r in
                                                                                             records)}


def tau_b(scores: dict[str, float], truth: dict[str, float], keys: list[str]) -> float | None:
    """Kendall tau-b (scipy.stats.kendalltau, variant b) of the scores against the truth over `keys`."""
    from scipy import stats

    keys = [k for k in keys if k in scores]
    if len(keys) < 3:
        return None
    x = [scores[k] for k in keys]
    if not all(math.isfinite(v) or v == -math.inf for v in x):
        return None
    x = [v if math.isfinite(v) else -1e308 for v in x]  # -inf ranks last, as a search would rank it
    tau = stats.kendalltau(x, [truth[k] for k in keys], variant="b").statistic
    return None if math.isnan(tau) else float(tau)


def pick_regret(scores: dict[str, float], truth: dict[str, float], keys: list[str]) -> float:
    """The regret of exhausting the space with the scorer: the table's best accuracy minus the mean accuracy of
    the networks tied at the scorer's highest score (a tie is a uniformly random pick, so its expected regret)."""
    top = max(scores[k] for k in keys)
    tied = [truth[k] for k in keys if scores[k] == top]
    return max(truth.values()) - statistics.fmean(tied)


def interval(values: list[float | None], seed: int = 0) -> dict | None:
    """Mean with a 95 % percentile bootstrap interval (scipy.stats.bootstrap via nasviz.analysis)."""
    from nasviz.analysis import mean_with_interval

    values = [v for v in values if v is not None]
    return mean_with_interval(values, seed=seed).to_json() if values else None


def variance_explained(values: list[float], accuracy: list[float]) -> dict[str, float]:
    """R^2 of accuracy on `values` as a categorical factor (one mean per distinct value: 1 - within-group sum of
    squares / total) and of a least-squares line on log(values)."""
    from scipy import stats

    y = np.asarray(accuracy, dtype=float)
    total = float(((y - y.mean()) ** 2).sum())
    groups: dict[float, list[float]] = {}
    for v, a in zip(values, accuracy):
        groups.setdefault(v, []).append(a)
    within = sum(float(((np.asarray(g) - np.mean(g)) ** 2).sum()) for g in groups.values())
    fit = stats.linregress(np.log(np.asarray(values, dtype=float)), y)
    return {"categorical_r2": 1 - within / total, "log_linear_r2": float(fit.rvalue ** 2),
            "distinct_values": len(groups)}


def supernet_figures(path: str | Path) -> dict[str, Any] | None:
    """A / FT / C tau-b (and the ceiling) per set from the committed `ranking` result, when it is there."""
    path = Path(path)
    if not path.exists():
        return None
    summary = json.loads(path.read_text())["results"]["summary"]
    return {s: {n: summary[s][n]["tau_b"] for n in evidence.SUPERNETS} | {"ceiling": summary[s]["ceiling_tau_b"]}
            for s in ("top", "region", "random") if s in summary}


def summarize(lines: dict[tuple[int | None, str], dict], table, seeds: list[int], sets: dict[str, Any] | None,
              supernets: dict[str, Any] | None = None) -> dict[str, Any]:
    """tau-b per proxy and set with intervals, FLOPs' share of the variance, sizes vs the table and costs."""
    from benchmarks.ranking import ceiling

    truth = {k: e.accuracy for k, e in table.entries.items()}
    sizes = {k: row["scores"] for (s, k), row in lines.items() if s is None}
    keys = [k for k in table.entries if k in sizes]
    per_seed = {s: {k: row["scores"] for (seed, k), row in lines.items() if seed == s} for s in seeds}
    seeds = [s for s in seeds if per_seed[s]]
    ranked = sorted(table, key=lambda e: -e.accuracy_by_seed[0])
    top = sets["top"] if sets else [e.genotype for e in ranked[: max(2, round(0.10 * len(ranked)))]]
    named: dict[str, Any] = {"whole": keys, "top": top}
    if sets:
        named["random"] = sets["random"]
        regions = {e: sets["region"][e] for e in sets["seeds"]}
    else:  # the evidence's sets are not stored: 20 random 100-network sets drawn by seed stand in
        regions = {}
        named["random"] = None
        randoms = {r: random.Random(r).sample(keys, min(100, len(keys))) for r in range(20)}

    def proxy_scores(name: str, seed: int | None) -> dict[str, float]:
        source = sizes if name in SIZE_PROXIES else per_seed[seed]
        return {k: v[name] for k, v in source.items()}

    out: dict[str, Any] = {}
    for name in SEEDED + SIZE_PROXIES:
        seeded = name in SEEDED
        block: dict[str, Any] = {}
        runs = seeds if seeded else [None]
        if not runs:
            continue
        for set_name in ("whole", "top", "random"):
            members = named.get(set_name)
            if members is None and set_name == "random":
                values = [statistics.fmean(tau_b(proxy_scores(name, s), truth, m) or 0.0 for m in randoms.values())
                          for s in runs]
                block["random"] = interval(values) | {"sets": "20 random 100-network sets (evidence sets absent)"}
                continue
            values = [tau_b(proxy_scores(name, s), truth, members) for s in runs]
            block[set_name] = interval(values)
            if block[set_name] is not None:
                block[set_name]["per_seed"] = values
        regrets = [pick_regret(proxy_scores(name, s), truth, keys) for s in runs]
        block["pick_regret_whole"] = interval(regrets) | {"per_seed": regrets, "unit": "accuracy (0.01 = 1 point)"}
        if regions:
            grid = {e: [tau_b(proxy_scores(name, s), truth, members) for s in runs] for e, members in regions.items()}
            by_proxy_seed = [statistics.fmean(grid[e][i] or 0.0 for e in grid) for i in range(len(runs))]
            by_region = [statistics.fmean(v or 0.0 for v in row) for row in grid.values()]
            if any(v is not None for row in grid.values() for v in row):
                block["region"] = interval(by_proxy_seed) | {"over_evidence_seeds": interval(by_region),
                                                             "per_seed": by_proxy_seed}
        out[name] = block
    ceilings = {"whole": ceiling(keys, table), "top": ceiling(top, table)}
    if named.get("random"):
        ceilings["random"] = ceiling(named["random"], table)
    if regions:
        ceilings["region"] = interval([ceiling(m, table) for m in regions.values()])
    acc = [truth[k] for k in keys]
    flops = [sizes[k]["flops"] for k in keys]
    mismatched = [k for k in keys if (sizes[k]["params"], sizes[k]["flops"]) !=
                  (table.entries[k].params, table.entries[k].flops)]
    costs = {}
    for name in SEEDED + SIZE_PROXIES:
        values = [row["cpu_s"][name] for row in lines.values() if name in row["cpu_s"]]
        if values:
            costs[name] = {"median_cpu_s": round(statistics.median(values), 5), "n": len(values),
                           "total_cpu_s": round(sum(values), 1)}
    best = max((n for n in SEEDED if n in out and out[n]["whole"]), key=lambda n: out[n]["whole"]["value"],
               default=None)
    return {"tau_b": out, "ceiling_tau_b": ceilings, "supernets": supernets,
            "flops_variance_explained": variance_explained(flops, acc) if len(keys) > 2 else None,
            "params_variance_explained": variance_explained([sizes[k]["params"] for k in keys], acc)
            if len(keys) > 2 else None,
            "sizes_match_table": {"networks": len(keys), "mismatched": mismatched[:10],
                                  "mismatched_count": len(mismatched)},
            "cpu_s_per_network": costs, "best_proxy_whole": best, "seeds": seeds, "networks": len(keys),
            "set_sizes": {"whole": len(keys), "top": len(top),
                          "random": len(named["random"]) if named.get("random") else 100,
                          "region": {e: len(m) for e, m in regions.items()}}}


def _ci(e: dict | None) -> str:
    if e is None:
        return "n/a"
    if e["low"] == e["high"] == e["value"]:
        return f"{e['value']:+.2f}"
    return f"{e['value']:+.2f} [{e['low']:+.2f}, {e['high']:+.2f}]"


def markdown(result: dict) -> str:
    """The tables of docs/benchmarks.md's yardsticks section, from this benchmark's result."""
    r = result["results"]
    lines = ["| scorer | whole space | top 10 % | search region | search region, over evidence seeds | random set | "
             "regret of its top pick, points | CPU-s per network (median) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, block in r["tau_b"].items():
        cost = r["cpu_s_per_network"].get(name, {}).get("median_cpu_s")
        pick = block.get("pick_regret_whole")
        pick_text = _ci({k: 100 * pick[k] for k in ("value", "low", "high")}) if pick else "n/a"
        region = block.get("region") or {}
        lines.append(f"| {name} | {_ci(block.get('whole'))} | {_ci(block.get('top'))} | {_ci(region or None)} | "
                     f"{_ci(region.get('over_evidence_seeds'))} | {_ci(block.get('random'))} | {pick_text} | "
                     f"{cost if cost is not None else 'n/a'} |")
    sn = r.get("supernets") or {}
    for net in evidence.SUPERNETS:
        if sn:
            lines.append(f"| supernet {net} (`ranking`) | — | {_ci(sn['top'][net])} | — | {_ci(sn['region'][net])} | "
                         f"{_ci(sn['random'][net])} | — | — |")
    c = r["ceiling_tau_b"]
    random_ceiling = f"{c['random']:+.2f}" if "random" in c else "n/a"
    lines.append(f"| table seed-vs-seed (ceiling) | {c['whole']:+.2f} | {c['top']:+.2f} | "
                 f"— | {_ci(c.get('region'))} | {random_ceiling} | — | — |")
    return "\n".join(lines)


def run(
    quick: bool = False,
    *,
    tiny: bool = False,
    seeds: list[int] | int | None = None,
    batch_size: int | None = None,
    networks_count: int | None = None,
    runs_file: str | None = None,
    evidence_runs: str = EVIDENCE_RUNS,
    evidence_ranking: str = EVIDENCE_RANKING,
    table: str = evidence.TABLE,
    summary: bool = True,
    compute: bool = True,
) -> dict[str, Any]:
    """Score the table's networks (appending to `runs_file`) and summarise (`summary=False`: collect only;
    `compute=False`: summarise what the runs file holds, e.g. while a job is still writing it, with the seeds
    that are complete)."""
    from nasviz.table import load

    started, load_before = common.now(), common.loadavg()
    size = common.size(quick, tiny)
    sizes = SIZES[size]
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds if seeds is not None else
                                                                     range(sizes["seeds"]))
    batch_size = batch_size or sizes["batch_size"]
    count = networks_count if networks_count is not None else sizes["networks"]
    runs_file = runs_file or f"benchmarks/results/yardsticks/runs-{size}.jsonl"
    lay = layout()
    truth = load(table)
    keys = networks(truth, count)
    settings_key = evidence.settings_key({"batch_size": batch_size, "layout": lay, "table": truth.name,
                                          "proxies": list(SEEDED + SIZE_PROXIES)})
    cpu_start = time.process_time()
    lines = (collect(truth, keys, seeds, batch_size, runs_file, lay, settings_key) if compute
             else read_lines(runs_file, settings_key))
    lines = {k: read_back(v) for k, v in lines.items() if k[1] in set(keys)}
    inputs = {"size": size, "seeds": seeds, "batch_size": batch_size, "networks": len(keys), "layout": lay,
              "runs_file": runs_file, "table": truth.name, "settings_key": settings_key,
              "evidence_runs": evidence_runs, "evidence_ranking": evidence_ranking}
    if not summary:
        return common.result("yardsticks", figure="lines collected", value=len(lines), unit="lines", goal=None,
                             met=None, inputs=inputs, results={"cpu_s": round(time.process_time() - cpu_start, 1)},
                             load_before=load_before, started=started)
    complete = [s for s in seeds if all((s, k) in lines for k in keys)]
    inputs["incomplete_seeds_left_out"] = [s for s in seeds if s not in complete]
    stats = summarize(lines, truth, complete, evidence_sets(evidence_runs), supernet_figures(evidence_ranking))
    best = stats["best_proxy_whole"]
    best_tau = stats["tau_b"][best]["whole"]["value"] if best else None
    flops_tau = stats["tau_b"]["flops"]["whole"]["value"]
    return common.result(
        "yardsticks",
        figure=f"Kendall tau-b vs the table over the whole space of the best zero-cost proxy ({best})",
        value=common.rounded(best_tau) if best_tau is not None else None,
        unit="tau-b, mean over proxy seeds (interval in results)",
        goal=f"> FLOPs' tau-b ({flops_tau:.3f}): a zero-cost proxy that ranks better than size alone",
        met=bool(best_tau is not None and best_tau > flops_tau),
        inputs=inputs,
        results={**stats, "cpu_s_this_call": round(time.process_time() - cpu_start, 1)},
        load_before=load_before,
        started=started,
        notes=["proxy seed s initialises each network and draws the batch of training images (the same batch for "
               "every network); higher scores = better for every proxy",
               "sets: whole = every network scored; top = the table's top 10 % by seed 0 (the evidence's top set); "
               "region = each evidence seed's final sft-ga region + neighbours (mean over the 20); random = the "
               "evidence's fixed random sample",
               "intervals: 95 % bootstrap over proxy seeds; region also over evidence seeds (over_evidence_seeds); "
               "params and flops do not depend on a seed",
               "ceiling_tau_b: the table's own seed-to-seed tau-b among the multi-seed networks of each set"],
    )
