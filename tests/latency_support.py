"""Hand-built latency profiles for tests: every piece of a layout with made-up times (no timing at all)."""

from __future__ import annotations

import json
from pathlib import Path

from nasviz.latency import Layout, Profile, save_profile
from nasviz.latency.layout import build_supernet, cell_shapes
from nasviz.latency.profile import needed_ops
from nasviz.latency.runtime import machine

COST = {"max_pool_3x3": 1, "avg_pool_3x3": 1, "skip_connect": 2, "dil_conv_3x3": 4, "dil_conv_5x5": 6,
        "sep_conv_3x3": 8, "sep_conv_5x5": 12}
"""Made-up relative cost per operation (per input element)."""


def entry(ms: float) -> dict:
    return {"ms": ms, "median_ms": ms, "min_ms": ms, "spread_ms": 0.0, "samples": 1}


def hand_built(layout: Layout, op_ms=None, fixed_ms: float = 0.25, overhead_ms: float = 0.125) -> Profile:
    """A profile of `layout` whose operation times are `op_ms(key)` (default: COST x input elements / 1e4)."""
    cells = cell_shapes(build_supernet(layout), layout)[0]
    fixed = {"stem": entry(fixed_ms), "head": entry(fixed_ms)}
    for i in range(layout.layers):
        fixed.update({f"cell{i}.{p}": entry(fixed_ms) for p in ("preprocess0", "preprocess1", "combine")})

    def default(key: str) -> float:
        op, shape = key.split("@")
        c, h, w = (int(v) for v in shape.split("/")[0].split("x"))
        return COST[op] * c * h * w / 1e4

    ops = {key: entry((op_ms or default)(key)) for key in needed_ops(layout.space, cells)}
    return Profile(layout, "torch", 1, 1, cells, fixed, ops, overhead_ms, machine("torch", 1), statistic="median",
                   timing={"note": "hand-built for tests"}, created="2026-01-01T00:00:00+00:00")


def write(profile: Profile, path: Path) -> Path:
    return save_profile(profile, path)


def damage(path: Path, how: str) -> Path:
    """Copies of a profile file made unusable: truncated, another format, or an entry missing."""
    text = path.read_text()
    out = path.with_name(f"{how}.json")
    if how == "truncated":
        out.write_text(text[: len(text) // 2])
    elif how == "other":
        out.write_text(json.dumps({"format": "something-else", "rows": []}))
    elif how == "missing-op":
        data = json.loads(text)
        data["ops"].pop(sorted(data["ops"])[0])
        out.write_text(json.dumps(data))
    return out
