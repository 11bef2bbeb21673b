"""The evidence runs behind `ranking` and `methods`: per seed, searches in the `mini` space judged by its table.

One *seed job* does everything both questions need for one seed, sharing warm-ups where the methods share them:

1. Warm up an SFT-GA search (supernet A), keep a copy of its state, and run it on (supernet FT).
2. From the same warm-up, run the controls that share it: SFT-GA with uniform path sampling (its final supernet
   is C: A trained the same extra steps, in the same phases, on uniformly drawn paths), SFT-GA without parent
   re-evaluation and GA without fine-tuning.
3. Warm up once more with the fine-tuning steps added to the warm-up, and from there run GA and random search
   (the "extra warm-up" controls: as many supernet steps as SFT-GA, none of them focused).
4. Score fixed sets of architectures under A, FT and C on held-out images (training images that neither the
   fitness nor the BatchNorm recalibration uses): the table's top 10 %, the search's final region with one-gene
   neighbours, and a fixed random sample.

Every search gets the same number of search evaluations as SFT-GA (population x (1 + 2 x generations)):
GA and random search run twice the generations (they evaluate only offspring), SFT-GA without re-evaluation runs
twice the generations at half the fine-tuning steps (so its supernet steps are equal too). Diagnostic
evaluations (fitness before fine-tuning) are switched off.

Seed jobs are appended to a runs file (one JSON line each) as they finish, so a long benchmark resumes where it
stopped and two processes can share the work (`--set seeds=[0,2,4]` in one, `[1,3,5]` in the other).
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import torch

SIZES: dict[str, dict[str, Any]] = {
    "full": {"preset": "quick", "search": {}, "top": 0.10, "region": 40, "random": 40, "heldout": 1000,
             "sweep": (250, 500, 1000, 2000)},
    "quick": {"preset": "class", "search": {}, "top": 0.10, "region": 30, "random": 40, "heldout": 1000,
              "sweep": (250, 500, 1000)},
    "tiny": {"preset": "smoke", "search": {"warmup_steps": 4, "population": 3, "generations": 1,
                                           "finetune_steps": 4, "fitness_images": 64},
             "top": 0.01, "region": 6, "random": 4, "heldout": 200, "sweep": (100, 200)},
}
"""Sizes of a seed job: search preset (in `mini`), set sizes, held-out images and the fitness-image sweep."""

TABLE = "mini-fashion-mnist"
BASE = {"space": "mini", "method": "sft-ga", "device": "cpu", "record_before": False}
"""Every search here: the `mini` space, on the CPU, without diagnostic evaluations."""

VARIANTS = ("sft-ga", "sft-ga uniform", "sft-ga no re-evaluation", "ga", "ga + extra warm-up",
            "random + extra warm-up")
SUPERNETS = ("A", "FT", "C")
SETS = ("top", "region", "random")


def variant_settings(name: str, generations: int, finetune_steps: int, warmup_steps: int) -> dict[str, Any]:
    """The settings that make `name` an equal-evaluation (and, for the extra warm-up controls, equal-step) control."""
    extra = {"warmup_steps": warmup_steps + generations * finetune_steps}
    return {
        "sft-ga": {},
        "sft-ga uniform": {"path_sampling": "uniform"},
        "sft-ga no re-evaluation": {"reevaluate_parents": False, "generations": 2 * generations,
                                    "finetune_steps": max(1, finetune_steps // 2)},
        "ga": {"method": "ga", "generations": 2 * generations},
        "ga + extra warm-up": {"method": "ga", "generations": 2 * generations, **extra},
        "random + extra warm-up": {"method": "random", "generations": 2 * generations, **extra},
    }[name]


def settings_key(settings: dict[str, Any]) -> str:
    """A short digest of a job's settings: records of other settings in the same runs file are ignored."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def read_records(path: str | Path, key: str) -> dict[int, dict]:
    """{seed: record} of the finished seed jobs with settings `key` in the runs file (none if it is missing)."""
    path = Path(path)
    if not path.exists():
        return {}
    out = {}
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("key") == key:
                out[int(record["seed"])] = record
    return out


def append_record(path: str | Path, record: dict) -> None:
    """Append one finished seed job as one line (one write: two processes may share the file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def heldout_batches(search, n: int, batch_size: int = 250) -> list:
    """`n` training images that neither the weight part (hence BN recalibration) nor the fitness part uses."""
    from nasviz.data.batches import eval_batches

    c, d = search.config, search.data
    order = torch.randperm(len(d.train_labels), generator=torch.Generator().manual_seed(c.seed))
    start = c.fitness_images + c.weight_images
    index = order[start:start + n].sort().values
    if len(index) < n:
        raise ValueError(f"only {len(index)} held-out images left; allowed: heldout <= {len(order) - start}")
    return list(eval_batches(d.train_images[index], d.train_labels[index], batch_size, d.mean, d.std,
                             search.device, channels_last=True))


def batch_accuracies(model, genotype, calibration, batches) -> list[float]:
    """Accuracy per held-out batch after one BatchNorm recalibration (prefix means give smaller samples)."""
    from nasviz.train.steps import accuracy, recalibrate_bn

    recalibrate_bn(model, genotype, calibration)
    return [accuracy(model, genotype, [b]) for b in batches]


def neighbours(space, genotype, rng: random.Random) -> list:
    """Every genotype one gene (an operation or an input of one node) away from `genotype`, shuffled by `rng`
    (in a tied space such as `mini` the reduction cell changes with the normal cell)."""
    out = []
    for cell in ("normal",) if space.tied else ("normal", "reduce"):
        edges = list(getattr(genotype, cell))
        for i, (op, src) in enumerate(edges):
            node = i // 2
            for new in [(o, src) for o in space.ops if o != op] + [(op, s) for s in range(node + 2) if s != src]:
                changed = tuple(edges[:i] + [new] + edges[i + 1:])
                cells = {"normal": changed, "reduce": changed} if space.tied else {cell: changed}
                try:
                    out.append(space.check(dataclasses.replace(genotype, **cells)))
                except ValueError:  # e.g. an input the node may not take
                    continue
    rng.shuffle(out)
    return out


def architecture_sets(table, space, search, sizes: dict, seed: int) -> dict[str, list[str]]:
    """Canonical keys of the three sets: the table's top by seed 0 (the networks its build trained three times),
    the search's final region (+ neighbours), and a random sample (the same for every seed)."""
    ranked = sorted(table, key=lambda e: -e.accuracy_by_seed[0])  # seed 0: every network has it
    top = [e.genotype for e in ranked[: max(2, round(sizes["top"] * len(ranked)))]]
    region: list[str] = []
    for g in search.last_region:
        key = space.key(g)
        if key not in region:
            region.append(key)
    rng = random.Random(seed + 31)
    for g in search.population.genotypes:
        for n in neighbours(space, g, rng):
            key = space.key(n)
            if len(region) < sizes["region"] and key not in region and key in table.entries:
                region.append(key)
    fixed = random.Random(20261130)  # the same random sample for every seed
    pool = sorted(table.entries)
    return {"top": top, "region": region[: sizes["region"]], "random": fixed.sample(pool, sizes["random"])}


def run_variant(config, state: dict | None):
    """A search of `config` (continued from `state`, a warm-up's state, when given), run to the end; it remembers
    its last generation's region P ∪ Q (`last_region`) and its CPU seconds (`cpu_s`)."""
    from nasviz.search.loop import Search

    search = Search(config)
    if state is not None:
        search.load_state_dict(copy.deepcopy(state))
    start = time.process_time()
    row = None
    while not search.done:
        row = search.step() or row
    search.last_region = [search.space.parse(i["genotype"]) for i in row["individuals"]] if row else []
    search.cpu_s = time.process_time() - start
    return search, search.result()


def outcome(search, result: dict) -> dict[str, Any]:
    """What a method is judged by, kept raw (the table judges it when summarised): the returned genotype and
    every genotype it evaluated, with its budget."""
    return {"best_genotype": result["best_genotype"], "best_fitness": result["best_fitness"],
            "evaluations": result["evaluations"], "genotypes_evaluated": result["genotypes_evaluated"],
            "supernet_steps": result["supernet_steps"]["total"], "cpu_s": round(search.cpu_s, 2),
            "seen": sorted(search.seen)}


def judged(raw: dict, table) -> dict[str, Any]:
    """`raw` (an `outcome`) judged by the table: regret and percentile of the returned genotype, and the regret
    of the best network evaluated at all."""
    top = table.best().accuracy
    return {**{k: v for k, v in raw.items() if k != "seen"},
            "regret": top - table.accuracy(raw["best_genotype"]), "percentile": table.percentile(raw["best_genotype"]),
            "explored_regret": top - max(table.accuracy(k) for k in raw["seen"])}


def seed_job(seed: int, size: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything both questions need for one seed (see the module docstring)."""
    from nasviz.search.config import SearchConfig
    from nasviz.search.loop import Search
    from nasviz.table import load
    from nasviz.train.steps import fitness

    sizes = SIZES[size]
    settings = {**BASE, **sizes["search"], **(overrides or {})}
    table = load(settings.get("table") or TABLE)
    base = SearchConfig.from_preset(sizes["preset"], seed=seed, **settings)
    G, F, W = base.generations, base.finetune_steps, base.warmup_steps
    cfg = {v: base.replace(**variant_settings(v, G, F, W)) for v in VARIANTS}
    started = time.process_time()

    # 1-2: the shared warm-up, SFT-GA and the controls that share it
    first = Search(cfg["sft-ga"])
    first.warmup()
    warm = copy.deepcopy(first.state_dict())
    searches, outcomes = {}, {}
    for v in ("sft-ga", "sft-ga uniform", "sft-ga no re-evaluation", "ga"):
        searches[v], result = run_variant(cfg[v], warm)
        outcomes[v] = outcome(searches[v], result)
    # 3: the extra warm-up, shared by GA and random search
    extra = Search(cfg["ga + extra warm-up"])
    extra.warmup()
    extra_state = copy.deepcopy(extra.state_dict())
    for v in ("ga + extra warm-up", "random + extra warm-up"):
        searches[v], result = run_variant(cfg[v], extra_state)
        outcomes[v] = outcome(searches[v], result)
    del extra

    # 4: scoring under A, FT and C on held-out images
    ft, control = searches["sft-ga"], searches["sft-ga uniform"]
    a = Search(cfg["sft-ga"])
    a.load_state_dict(copy.deepcopy(warm))
    nets = {"A": a.supernet, "FT": ft.supernet, "C": control.supernet}
    space = ft.space
    sets = architecture_sets(table, space, ft, sizes, seed)
    heldout = heldout_batches(ft, max(sizes["sweep"]), batch_size=50 if size == "tiny" else 250)
    per_batch = len(heldout[0][1])
    main_batches = max(1, sizes["heldout"] // per_batch)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    sweep: dict[str, dict[str, float]] = {}
    for name, net in nets.items():
        scores[name] = {}
        for set_name, keys in sets.items():
            scores[name][set_name] = {}
            sweeping = name == "FT" and set_name == "region"
            for key in keys:
                accs = batch_accuracies(net, space.parse(key), ft.calibration,
                                        heldout if sweeping else heldout[:main_batches])
                scores[name][set_name][key] = sum(accs[:main_batches]) / main_batches
                if sweeping:
                    sweep[key] = {str(n): sum(accs[: n // per_batch]) / (n // per_batch) for n in sizes["sweep"]}
    # BN recalibration batches: FT on the region with 1, 2 and 4 calibration batches
    from nasviz.search.data_split import search_batches

    bn_sweep: dict[str, dict[str, float]] = {}
    for n_bn in (1, 2, 4):
        _, calibration, _ = search_batches(ft.data, ft.config.replace(bn_batches=n_bn), ft.device)
        bn_sweep[str(n_bn)] = {key: fitness(ft.supernet, space.parse(key), calibration, heldout[:main_batches])
                               for key in sets["region"]}
    return {
        "seed": seed,
        "size": size,
        "settings": settings,
        "preset": sizes["preset"],
        "outcomes": outcomes,
        "sets": sets,
        "scores": scores,
        "fitness_images_sweep": sweep,
        "bn_batches_sweep": bn_sweep,
        "region_fitness": {space.key(i.genotype): i.fitness for i in ft.population},
        "cpu_s": round(time.process_time() - started, 1),
        "torch": torch.__version__,
    }


def records(seeds: list[int], size: str, runs_file: str | Path, overrides: dict[str, Any] | None = None,
            log=print) -> list[dict]:
    """The seed jobs of `seeds`, computing (and appending) those not yet in `runs_file`."""
    key = settings_key({"size": size, "overrides": overrides or {}, "sizes": SIZES[size]})
    done = read_records(runs_file, key)
    for seed in seeds:
        if seed in done:
            continue
        record = {**seed_job(seed, size, overrides), "key": key}
        append_record(runs_file, record)
        done[seed] = record
        log(f"seed {seed} done in {record['cpu_s']} CPU-s")
    return [done[s] for s in seeds]


def export(ranking_result: dict, methods_result: dict, path: str | Path) -> dict:
    """The per-seed values notebook 05 draws (nasviz/notebooks/data/evidence-mini.json), with their provenance."""
    per_r, per_m = ranking_result["results"]["per_seed"], methods_result["results"]["per_seed"]
    out = {
        "provenance": {"commands": ["python -m benchmarks ranking", "python -m benchmarks methods"],
                       "seeds_ranking": ranking_result["inputs"]["seeds"],
                       "seeds_methods": methods_result["inputs"]["seeds"], "space": "mini",
                       "preset": methods_result["inputs"]["preset"], "table": ranking_result["inputs"]["table"],
                       "machine": methods_result["machine"]},
        "regret": {v: [row[v]["regret"] for row in per_m] for v in VARIANTS},
        "explored_regret": {v: [row[v]["explored_regret"] for row in per_m] for v in VARIANTS},
        "tau_b": {s: {n: [row[s][n]["tau_b"] for row in per_r] for n in SUPERNETS} for s in SETS},
        "ceiling": {s: [row[s]["ceiling_tau_b"] for row in per_r] for s in SETS},
        "fitness_images": {n: [row["fitness_images"][n] for row in per_r] for n in per_r[0]["fitness_images"]},
        "bn_batches": {n: [row["bn_batches"][n] for row in per_r] for n in per_r[0]["bn_batches"]},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1))
    return out


def _ci(e: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if e is None:
        return "n/a"
    return f"{scale * e['value']:+.{digits}f} [{scale * e['low']:+.{digits}f}, {scale * e['high']:+.{digits}f}]"


def markdown(ranking_result: dict, methods_result: dict) -> str:
    """The tables of docs/benchmarks.md's evidence section, from the two benchmarks' results."""
    r, m = ranking_result["results"]["summary"], methods_result["results"]
    lines = ["| set | A (warm-up) | FT (fine-tuned) | C (uniform control) | table ceiling | FT − C (two-level) | "
             "FT − A (two-level) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in SETS:
        b = r[s]
        lines.append(f"| {s} | {_ci(b['A']['tau_b'])} | {_ci(b['FT']['tau_b'])} | {_ci(b['C']['tau_b'])} | "
                     f"{_ci(b['ceiling_tau_b'])} | {_ci(b['FT - C']['tau_b_two_level'])} | "
                     f"{_ci(b['FT - A']['tau_b_two_level'])} |")
    lines += ["", "| set | precision@5 A / FT / C | top-pick regret, points, A / FT / C | sparse τ-b A / FT / C |",
              "| --- | --- | --- | --- |"]
    for s in SETS:
        b = r[s]
        lines.append(f"| {s} | " + " / ".join(f"{b[n]['precision_at_5']['value']:.2f}" for n in SUPERNETS) + " | "
                     + " / ".join(f"{100 * b[n]['regret']['value']:.2f}" for n in SUPERNETS) + " | "
                     + " / ".join(f"{b[n]['sparse_tau_b']['value']:+.2f}" for n in SUPERNETS) + " |")
    lines += ["", "| fitness images | " + " | ".join(r["fitness_images_tau_b"]) + " |",
              "| --- |" + " --- |" * len(r["fitness_images_tau_b"]),
              "| τ-b (FT, region) | " + " | ".join(_ci(e) for e in r["fitness_images_tau_b"].values()) + " |",
              "", "| BN batches | " + " | ".join(r["bn_batches_tau_b"]) + " |",
              "| --- |" + " --- |" * len(r["bn_batches_tau_b"]),
              "| τ-b (FT, region) | " + " | ".join(_ci(e) for e in r["bn_batches_tau_b"].values()) + " |"]
    lines += ["", "| method | regret of the pick, points | percentile | regret of the best evaluated, points | "
              "other − sft-ga regret, points | Wilcoxon p (Holm) | sft-ga better / tie / worse | evaluations | "
              "supernet steps |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in VARIANTS:
        b = m["by_variant"][v]
        diff = m["paired_minus_sft_ga"]["regret"].get(v)
        test = m["wilcoxon_holm"]["regret"].get(v)
        wins = m["regret_wins"].get(v)
        p_holm = f"{test['p_holm']:.3f}" if test else "—"
        record = "/".join(str(wins[k]) for k in ("sft-ga better", "ties", "sft-ga worse")) if wins else "—"
        lines.append(f"| {v} | {_ci(b['regret'], 100)} | {b['percentile']['value']:.1f} | "
                     f"{_ci(b['explored_regret'], 100)} | {_ci(diff, 100) if diff else '—'} | "
                     f"{p_holm} | {record} | "
                     f"{b['evaluations']} | {b['supernet_steps']} |")
    return "\n".join(lines)
