"""From-scratch results, ablation variants, and the rank correlation of supernet fitness with accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasviz.errors import ConfigError
from nasviz.notebooks.tables import html_table


def scratch_table(results: dict[str, dict]):
    """One line per trained genotype: test accuracy, parameters, FLOPs, time."""
    rows = [{"architecture": name, "test accuracy": r["test_accuracy"], "test images": r["test_images"],
             "parameters": r["params"], "MFLOPs": round(r["flops"] / 1e6, 2), "epochs": r["config"]["epochs"],
             "train images": r["train_images"], "time (s)": round(r["wall_time_s"], 1)}
            for name, r in results.items()]
    return html_table(rows, caption="Trained from scratch with the same budget")


def scratch_figure(results: dict[str, dict], title: str = "Test accuracy after training from scratch"):
    """A bar per trained genotype: test accuracy, with parameters in the label."""
    import plotly.graph_objects as go

    names = list(results)
    acc = [results[n]["test_accuracy"] for n in names]
    fig = go.Figure(go.Bar(x=names, y=acc, text=[f"{a:.3f}<br>{results[n]['params']:,} params"
                                                 for n, a in zip(names, acc)],
                           textposition="outside", marker={"color": "#636efa"}))
    # bars start at zero: a cut axis would blow differences within the noise up into visible gaps
    fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", height=400,
                      yaxis={"title": "test accuracy", "range": [0.0, 1.08]}, margin={"t": 60})
    return fig


ABLATIONS: dict[str, dict[str, Any]] = {
    "sft-ga": {"method": "sft-ga"},
    "ga": {"method": "ga"},
    "region": {"method": "sft-ga", "path_sampling": "region"},
    "uniform": {"method": "sft-ga", "path_sampling": "uniform"},
    "no-reevaluation": {"method": "sft-ga", "reevaluate_parents": False},
    "random": {"method": "random"},
}
"""Search variants for the ablation notebook, each a set of SearchConfig overrides:
sft-ga (the method: fine-tuning on the population, fair re-evaluation), ga (no fine-tuning: SPOS-style
evolution), region / uniform (other fine-tuning path-sampling strategies), no-reevaluation (parents keep
fitness values computed under older weights), random (random search with weight sharing)."""


_ABLATION_NOTES = {
    "sft-ga": "the method: fine-tune on the population P ∪ Q, fair re-evaluation",
    "ga": "GA without fine-tuning (SPOS-style evolution on the warmed-up supernet)",
    "region": "SFT-GA, fine-tuning paths drawn gene by gene from the region's frequencies",
    "uniform": "SFT-GA, fine-tuning paths drawn uniformly (no focusing)",
    "no-reevaluation": "SFT-GA, but parents keep fitness values from older weights (unfair comparison)",
    "random": "random search with weight sharing, same number of evaluations",
}


def ablation_table(variants: Sequence[str]):
    """What each variant changes."""
    rows = [{"variant": v, "settings": ", ".join(f"{k}={val!r}" for k, val in ABLATIONS.get(v, {}).items()),
             "what it tests": _ABLATION_NOTES.get(v, "unknown variant")} for v in variants]
    return html_table(rows, caption="Search variants")


def best_table(runs: Sequence[dict]):
    """The best genotype of each run, node by node."""
    from nasviz.viz.common import cell_summary

    rows = []
    for run in runs:
        if not run["rows"]:
            continue
        best = run["rows"][-1]["best"]
        rows.append({"run": run["name"], "best fitness": best["fitness"],
                     "normal cell": cell_summary(best["genotype"], "normal"),
                     "reduction cell": cell_summary(best["genotype"], "reduce")})
    return html_table(rows, caption="Best genotype of each run")


def ablation_config(base, variant: str):
    """`base` (a SearchConfig) with `variant`'s switches; an unknown variant is a one-line error."""
    from nasviz.space import suggest

    if variant not in ABLATIONS:
        raise ConfigError(f"unknown variant {variant!r}{suggest(variant, list(ABLATIONS))}; "
                          f"allowed: {', '.join(ABLATIONS)}")
    values = dict(ABLATIONS[variant])
    if values.get("method") in ("ga", "random"):
        values.setdefault("finetune", None)
    return base.replace(**values)


def spread_sample(individuals: Sequence[dict], k: int) -> list[dict]:
    """Up to `k` distinct individuals spread evenly over the fitness range (best, worst and in between)."""
    unique = list({i["genotype"]: i for i in sorted(individuals, key=lambda i: -i["fitness"])}.values())
    if len(unique) <= k:
        return unique
    if k == 1:
        return unique[:1]
    picks = sorted({round(j * (len(unique) - 1) / (k - 1)) for j in range(k)})
    return [unique[p] for p in picks]


def rank_figure(fitness: Sequence[float], accuracy: Sequence[float], labels: Sequence[str],
                title: str = "Supernet fitness vs accuracy from scratch"):
    """Scatter of supernet fitness (inherited weights) against from-scratch test accuracy, with Kendall's tau."""
    import plotly.graph_objects as go

    from nasviz.analysis import kendall

    tau, p = kendall(fitness, accuracy)
    fig = go.Figure(go.Scatter(x=list(fitness), y=list(accuracy), mode="markers+text", text=list(labels),
                               textposition="top center", marker={"size": 10, "color": "#ef553b"},
                               hovertemplate="%{text}<br>fitness %{x:.4f}<br>accuracy %{y:.4f}<extra></extra>"))
    fig.update_layout(title={"text": f"{title} (Kendall τ = {tau:.2f}, p = {p:.2f})", "x": 0.01},
                      template="plotly_white", height=420, xaxis_title="supernet fitness (inherited weights)",
                      yaxis_title="test accuracy (trained from scratch)")
    return fig
