"""Lineage, as a run's history records it: every individual's identity, parents, the operator that made it and its
fitness story (the search writes them: `nasviz.search.lineage`).

An individual's id is 'g<generation>-<index among that generation's newcomers>', stable for the whole run. A history
row's individual lists its `born` generation, `operator` ('initial', 'random', 'mutation', 'crossover',
'crossover+mutation'), `parents` (ids; None where a parent's id is unknown) and `changes` (crossover: the parent id
each gene came from; mutation: which gene, in which cell and node, the edge replaced and the edge that replaced it),
and its `story`, every fitness measured for it with the supernet step.

`individuals` reads them from history rows: one record per individual of a run, its lineage, its fitness story and
its part in every generation (role, fitness, whether it survived the selection, its rank and the cut). Runs recorded
before lineage still read: their individuals get the ids the same rule gives, operator and parents unknown (None),
and a story made of the fitness values the rows hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

OPERATORS = ("initial", "random", "mutation", "crossover", "crossover+mutation")
"""The operators a record names (None: unknown, a run recorded before lineage)."""


def individual_id(generation: int, index: int) -> str:
    """The id of the `index`-th newcomer of `generation`."""
    return f"g{generation}-{index}"


# --- reading ----------------------------------------------------------------------------------------------------


def individuals(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One record per individual of the history `rows`, by id, in order of birth: id, genotype, born, operator,
    parents, changes (None where not recorded), params, flops, truth, story, and `generations`: per generation it
    took part in, its role, fitness, fitness_before, whether it was selected, its rank in the region (1 = best),
    the region's size, how many were kept, and the cut: the last survivor's fitness and id (whom a dropped
    individual lost to)."""
    records: dict[str, dict[str, Any]] = {}
    for row, keys in zip(rows, row_ids(rows)):
        generation, region = row["generation"], row["individuals"]
        kept = [k for k, e in enumerate(region) if e.get("selected")]
        last = min(kept, key=lambda k: (_score(region[k]["fitness"]), -kept.index(k))) if kept else None
        order = sorted(range(len(region)), key=lambda k: -_score(region[k]["fitness"]))
        rank = {k: r + 1 for r, k in enumerate(order)}
        for k, (key, entry) in enumerate(zip(keys, region)):
            new = entry.get("role") in ("initial", "offspring")
            record = records.get(key)
            if record is None:
                record = records[key] = _record(key, entry, generation if new else None)
            elif "story" in entry:
                record["story"] = [dict(e) for e in entry["story"]]
            if "id" not in entry and not any(e["step"] == entry.get("evaluated_at_step") for e in record["story"]):
                record["story"].append({"generation": generation, "step": entry.get("evaluated_at_step"),
                                        "fitness": entry["fitness"], "stage": "after"})
            record["generations"].append({
                "generation": generation, "role": entry.get("role"), "fitness": entry["fitness"],
                "fitness_before": entry.get("fitness_before"), "selected": bool(entry.get("selected")),
                "rank": rank[k], "of": len(region), "kept": len(kept),
                "cut": None if last is None else region[last]["fitness"],
                "cut_id": None if last is None else keys[last]})
    return records


def row_ids(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Per history row, the id of each of its individuals, in order: the recorded ids, or, in a run recorded
    before lineage, those the same rule gives (a genotype is evaluated once in a run, so it names one individual;
    a parent whose birth the rows do not show gets 'unknown-<genotype>')."""
    out: list[list[str]] = []
    by_genotype: dict[str, str] = {}
    for row in rows:
        keys, newcomers = [], 0
        for entry in row.get("individuals", ()):
            new = entry.get("role") in ("initial", "offspring")
            key = entry.get("id") or by_genotype.get(entry["genotype"])
            if key is None:
                key = individual_id(row["generation"], newcomers) if new else f"unknown-{entry['genotype']}"
            newcomers += new
            by_genotype.setdefault(entry["genotype"], key)
            keys.append(key)
        out.append(keys)
    return out


def ids_by_genotype(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The id of the individual each genotype text of the history `rows` is (`row_ids`; a population's members
    are among its row's individuals), in order of first appearance."""
    ids: dict[str, str] = {}
    for row, keys in zip(rows, row_ids(rows)):
        for entry, key in zip(row.get("individuals", ()), keys):
            ids.setdefault(entry["genotype"], key)
    return ids


def _record(key: str, entry: dict[str, Any], born: int | None) -> dict[str, Any]:
    known = "id" in entry
    return {"id": key, "genotype": entry["genotype"], "born": entry.get("born", born),
            "operator": entry.get("operator") if known else ("initial" if born == 0 else None),
            "parents": entry.get("parents") if known else ([] if born == 0 else None),
            "changes": entry.get("changes"), "params": entry.get("params"), "flops": entry.get("flops"),
            "truth": entry.get("truth"), "story": [dict(e) for e in entry.get("story", ())],
            "lineage_known": known or born == 0, "generations": []}


def _score(fitness: Any) -> float:
    return -math.inf if not isinstance(fitness, (int, float)) or math.isnan(fitness) else float(fitness)


def find(records: dict[str, dict[str, Any]], individual: str) -> dict[str, Any]:
    """The record of `individual` (an id or a genotype text); ValueError naming it and the ids there are."""
    if individual in records:
        return records[individual]
    for record in records.values():
        if record["genotype"] == individual:
            return record
    ids = list(records)
    shown = ", ".join(ids[:3]) + (f", ..., {ids[-1]}" if len(ids) > 3 else "")
    raise ValueError(f"no individual {individual!r} in this run; allowed: one of its {len(ids)} ids ({shown}) "
                     "or a genotype it evaluated")


def ancestors(records: dict[str, dict[str, Any]], individual: str) -> list[str]:
    """The ids of `individual` and all its known ancestors, each once, youngest first (breadth first)."""
    out, queue = [], [find(records, individual)["id"]]
    while queue:
        key = queue.pop(0)
        if key in out or key not in records:
            continue
        out.append(key)
        queue += [p for p in records[key]["parents"] or () if p is not None]
    return out


def mutations_from_start(records: dict[str, dict[str, Any]], individual: str) -> int | None:
    """The fewest mutated genes on a line of descent from a random genotype (generation 0's, or a later random
    one) to `individual` (None where the lineage is not known all the way)."""
    memo: dict[str, int | None] = {}

    def fewest(key: str) -> int | None:
        if key not in memo:
            record = records[key]
            parents = record["parents"]
            if record["operator"] in ("initial", "random"):  # a random genotype: no mutation yet
                memo[key] = 0
            elif not parents or any(p is None or p not in records for p in parents):
                memo[key] = None
            else:
                above = [fewest(p) for p in parents]
                own = len((record["changes"] or {}).get("mutations", ()))
                memo[key] = None if None in above else own + min(a for a in above if a is not None)
        return memo[key]

    return fewest(find(records, individual)["id"])
