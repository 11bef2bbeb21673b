"""What notebook 07's yardstick and final-pick sections call: free scorers (zero-cost proxies, FLOPs) and a
final pick by short retraining, next to the supernet and the ground-truth table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from nasviz.analysis import tau_with_interval
from nasviz.search import final_pick, proxies
from nasviz.space import Genotype


def proxy_scores(search, genotypes: Sequence[Genotype], name: str, seed: int = 0) -> tuple[list[float], float]:
    """Proxy `name`'s score of each genotype (its search-width network at initialisation, on a batch of
    `proxy_batch_size` training images drawn by `seed`), and the CPU seconds it took."""
    c, data = search.config, search.evaluator.dataset()
    images, labels = proxies.proxy_batch(data, c.proxy_batch_size, seed)
    start = time.process_time()
    scores = [proxies.score(name, g, data_shape=data.shape, num_classes=data.num_classes, channels=c.channels,
                            layers=c.layers, images=images, labels=labels, seed=seed) for g in genotypes]
    return scores, time.process_time() - start


def yardstick_rows(scorers: dict[str, tuple[Sequence[float], float]], truth: Sequence[float],
                   seed: int = 0) -> list[dict[str, Any]]:
    """One row per scorer: Kendall τ-b against the table (95 % bootstrap interval over the architectures) and
    the seconds it took to score them all."""
    rows = []
    for name, (scores, seconds) in scorers.items():
        e = tau_with_interval(list(scores), list(truth), seed=seed)
        rows.append({"scorer": name, "Kendall τ-b vs table": None if e is None else round(e.value, 3),
                     "95% interval": "n/a" if e is None else f"[{e.low:+.2f}, {e.high:+.2f}]",
                     "seconds": round(seconds, 1), "per network (ms)": round(1000 * seconds / len(scores), 1)})
    return rows


def retrain_pick(search, k: int, steps: int) -> dict[str, Any]:
    """The final pick by short retraining on a finished search: its `k` best candidates of everything it
    evaluated, each trained `steps` steps from scratch and scored on held-out training images
    (`nasviz.search.final_pick`); rows with their table truth, and the pick before and after, with the CPU seconds."""
    config = search.config.replace(final_pick="retrain", final_top_k=k, final_steps=steps)
    pool = [final_pick.retrain(c, search.evaluator.dataset(), config, search.space)
            for c in final_pick.candidates(search.state.latest, k)]
    winner, table = final_pick.picked(pool), search.truth
    rows = [{"candidate": i, "fitness": round(c.fitness, 4), "retrain score": round(c.mean, 4),
             "table accuracy": round(table.accuracy(c.genotype), 4),
             "percentile": round(table.percentile(c.genotype), 1), "picked": "✔" if c is winner else ""}
            for i, c in enumerate(pool, 1)]
    before = str(search.population[0].genotype)
    return {"rows": rows, "before": table.percentile(before), "after": table.percentile(winner.genotype),
            "cpu_s": sum(c.cpu_s for c in pool), "genotype": winner.genotype}
