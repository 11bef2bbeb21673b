"""The final pick's candidates as a small HTML table: each one's fitness in the search and its retrain scores
(`nasviz.search.final_pick`), the picked one marked. Used by the live dashboard and the report."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any


def candidates_table(candidates: Sequence[dict[str, Any]], picked: str | None = None, of: int | None = None) -> str:
    """HTML: one row per candidate (rank, fitness, retrain scores, their mean, CPU seconds); `picked` (genotype
    text) is marked; `of`: how many candidates there are in all (the rest are still to be retrained)."""
    rows = []
    for i, c in enumerate(candidates, 1):
        scores = c.get("retrain_scores") or c.get("scores") or []
        mean = sum(scores) / len(scores) if scores else None
        mark = " style='font-weight:bold;background:#e8f4e8'" if picked and c["genotype"] == picked else ""
        rows.append(f"<tr{mark} title='{html.escape(c['genotype'], quote=True)}'><td>{i}</td>"
                    f"<td>{c['fitness']:.4f}</td><td>{', '.join(f'{s:.4f}' for s in scores) or '…'}</td>"
                    f"<td>{'' if mean is None else f'{mean:.4f}'}</td>"
                    f"<td>{c.get('cpu_s', 0):.1f}</td><td>{'picked' if mark else ''}</td></tr>")
    waiting = "" if of is None or of <= len(candidates) else \
        f"<tr><td colspan='6'><i>{of - len(candidates)} more to retrain…</i></td></tr>"
    return ("<div class='nasviz-final-pick'><b>Final pick: short retraining of the top candidates</b>"
            "<table style='border-collapse:collapse;font-size:12px'><tr><th>#</th><th>fitness</th>"
            "<th>retrain score (held-out)</th><th>mean</th><th>CPU s</th><th></th></tr>"
            + "".join(rows) + waiting + "</table>"
            "<div style='font-size:11px;color:#555'>Fitness: accuracy with inherited weights (as the search saw "
            "it); retrain score: accuracy on held-out training images after training from scratch briefly. "
            "Hover a row for its genotype.</div></div>")
