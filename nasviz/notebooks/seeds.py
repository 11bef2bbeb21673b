"""Comparisons over several seeds: mean ± sd per group, as an error-bar chart with every value shown, and as a
table; plus the precomputed multi-seed comparison of the methods (`python -m benchmarks methods`)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasviz.notebooks.tables import html_table

Values = Sequence[float] | Sequence[tuple[str, float]]
"""A group's values: plain numbers, or (label, number) pairs whose labels show on hover (e.g. the seed)."""


def spread(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample standard deviation (None for a single value), min and max of `values`."""
    if not values:
        raise ValueError("spread needs at least one value")
    values = [float(v) for v in values]
    return {"n": len(values), "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None, "min": min(values), "max": max(values)}


def _pairs(values: Values) -> list[tuple[str, float]]:
    return [(str(v[0]), float(v[1])) if isinstance(v, (tuple, list)) else ("", float(v)) for v in values]


def spread_figure(groups: Mapping[str, Values], title: str, y_title: str, *, y_range: tuple[float, float] | None
                  = None, height: int = 400):
    """One bar per group at its mean, an error bar of ± one standard deviation (groups of two or more values),
    and every value as a dot on it. Bars start at zero (or `y_range[0]`), so differences look as small as they are."""
    import plotly.graph_objects as go

    names = [name for name, values in groups.items() if values]
    stats = {name: spread([v for _label, v in _pairs(groups[name])]) for name in names}
    bars = go.Bar(x=names, y=[stats[n]["mean"] for n in names], name="mean ± sd", marker={"color": "#9ecae1"},
                  error_y={"type": "data", "array": [stats[n]["sd"] or 0 for n in names], "visible": True,
                           "color": "#08519c", "thickness": 2, "width": 10},
                  text=[f"{stats[n]['mean']:.3f}" + (f" ± {stats[n]['sd']:.3f}" if stats[n]["sd"] is not None else "")
                        + f"<br>n={stats[n]['n']}" for n in names],
                  textposition="inside", insidetextanchor="start",
                  hovertemplate="%{x}: mean %{y:.4f}<extra></extra>")
    dots = [(name, label, value) for name in names for label, value in _pairs(groups[name])]
    points = go.Scatter(x=[d[0] for d in dots], y=[d[2] for d in dots], mode="markers", name="each value",
                        marker={"color": "#d62728", "size": 8, "line": {"width": 1, "color": "white"}},
                        text=[d[1] for d in dots], hovertemplate="%{x} %{text}: %{y:.4f}<extra></extra>")
    top = max((v for _n, _l, v in dots), default=1.0)
    low, high = y_range if y_range is not None else (0.0, max(1.0, top) * 1.08)
    fig = go.Figure([bars, points])
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", height=height,
                      yaxis={"title": {"text": y_title}, "range": [low, high]},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
                      margin={"t": 100 if "<br>" in title else 80})  # a two-line title clears the legend
    return fig


def spread_table(groups: Mapping[str, Values], caption: str, group: str = "group", digits: int = 4):
    """One line per group: n, mean ± sd, min, max, and every value (with its label where given)."""
    rows = []
    for name, values in groups.items():
        if not values:
            continue
        pairs = _pairs(values)
        s = spread([v for _label, v in pairs])
        rows.append({group: name, "n": s["n"],
                     "mean ± sd": f"{s['mean']:.{digits}f}" + (f" ± {s['sd']:.{digits}f}" if s["sd"] is not None
                                                                 else " (one value)"),
                     "min": round(s["min"], digits), "max": round(s["max"], digits),
                     "values": ", ".join(f"{label}: {v:.{digits}f}" if label else f"{v:.{digits}f}"
                                         for label, v in pairs)})
    return html_table(rows, caption=caption)


# --- precomputed: the methods benchmark -------------------------------------------------------------------------

def results_dir() -> Path:
    """benchmarks/results/ of the source tree nasviz runs from (absent in an installed wheel)."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def precomputed_methods(folder: str | Path | None = None) -> list[dict]:
    """Every (run, seed, method) of the committed full runs of `python -m benchmarks methods` under `folder`
    (default `results_dir()`): each a dict with run, seed, method, test_accuracy (best genotype trained from
    scratch), best_fitness (with its own supernet), params and search_wall_s. No files: an empty list."""
    folder = Path(folder) if folder is not None else results_dir()
    rows = []
    for path in sorted(folder.glob("methods_full_*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("benchmark") != "methods":
                continue
            for r in record["results"]["runs"]:
                rows.append({"run": path.stem, "seed": r["seed"], "method": r["method"],
                             "test_accuracy": r["test_accuracy"], "best_fitness": r["best_fitness"],
                             "params": r.get("params"), "search_wall_s": r.get("search_wall_s"),
                             "preset": record["inputs"].get("preset"), "scratch": record["inputs"].get("scratch")})
    return rows


def by_method(rows: Sequence[dict], key: str) -> dict[str, list[tuple[str, float]]]:
    """`key` of each row grouped by method, labelled run:seed (for `spread_figure` and `spread_table`)."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        run = r["run"].rsplit("_", 1)[-1].split("-")[0]  # methods_full_threads1_run2-c33dd24 -> run2
        groups.setdefault(r["method"], []).append((f"{run} seed {r['seed']}", r[key]))
    return groups


_METHOD_KEYS = {
    "best_fitness": ("Best fitness, each search judged by its own supernet", "best fitness (inherited weights)"),
    "test_accuracy": ("Best architecture of each search, trained from scratch", "test accuracy (from scratch)"),
}


def methods_figure(rows: Sequence[dict], key: str):
    """`spread_figure` of the precomputed methods comparison: `key` is "best_fitness" or "test_accuracy"."""
    if key not in _METHOD_KEYS:
        raise ValueError(f"key={key!r} is not allowed; allowed: {', '.join(_METHOD_KEYS)}")
    title, y_title = _METHOD_KEYS[key]
    runs = len({r["run"] for r in rows})
    seeds = len({r["seed"] for r in rows})
    return spread_figure(by_method(rows, key), f"{title}<br><sup>mean ± sd over {seeds} seeds × {runs} runs; dots: "
                         "each search</sup>", y_title, height=380)


def methods_table(rows: Sequence[dict]):
    """Per method of the precomputed comparison: searches, best fitness and from-scratch accuracy (mean ± sd),
    and in how many (run, seed) pairs it beat `sft-ga` from scratch."""
    fitness, accuracy = by_method(rows, "best_fitness"), by_method(rows, "test_accuracy")
    reference = dict(accuracy.get("sft-ga", []))
    lines = []
    for method in accuracy:
        f, a = spread([v for _k, v in fitness[method]]), spread([v for _k, v in accuracy[method]])
        line = {"method": method, "searches": a["n"], "best fitness": f"{f['mean']:.3f} ± {f['sd'] or 0:.3f}",
                "test accuracy from scratch": f"{a['mean']:.4f} ± {a['sd'] or 0:.4f}"}
        if method != "sft-ga" and reference:
            paired = [(reference[k], v) for k, v in accuracy[method] if k in reference]
            line["sft-ga better / worse (same run and seed)"] = (f"{sum(s > v for s, v in paired)} / "
                                                                  f"{sum(s < v for s, v in paired)}")
        lines.append(line)
    scratch = rows[0]["scratch"] if rows else {}
    return html_table(lines, caption=f"python -m benchmarks methods, preset {rows[0]['preset'] if rows else '?'}; "
                      f"from scratch: {scratch.get('epochs')} epochs on {scratch.get('train_size')} images")
