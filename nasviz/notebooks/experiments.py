"""From-scratch results, ablation variants, and the rank correlation of supernet fitness with accuracy."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nasviz.errors import ConfigError
from nasviz.notebooks.seeds import spread
from nasviz.notebooks.tables import html_table


def _per_seed(results: Mapping[str, dict | Sequence[dict]]) -> dict[str, list[dict]]:
    """Each name's `train_from_scratch` results as a list (one per training seed; a single result is a list of one)."""
    return {name: [r] if isinstance(r, Mapping) else list(r) for name, r in results.items()}


def scratch_table(results: Mapping[str, dict | Sequence[dict]]):
    """One line per trained genotype: test accuracy (mean ± sd over its training seeds, and each seed's),
    parameters, FLOPs, budget and time."""
    rows = []
    for name, runs in _per_seed(results).items():
        acc = spread([r["test_accuracy"] for r in runs])
        first = runs[0]
        rows.append({"architecture": name,
                     "test accuracy": (f"{acc['mean']:.4f} ± {acc['sd']:.4f}" if acc["sd"] is not None
                                       else f"{acc['mean']:.4f}"),
                     "per seed": ", ".join(f"{r['config']['seed']}: {r['test_accuracy']:.4f}" for r in runs),
                     "test images": first["test_images"], "parameters": first["params"],
                     "MFLOPs": round(first["flops"] / 1e6, 2), "epochs": first["config"]["epochs"],
                     "train images": first["train_images"],
                     "time (s)": round(sum(r["wall_time_s"] for r in runs), 1)})
    seeds = max(len(runs) for runs in _per_seed(results).values()) if results else 0
    return html_table(rows, caption="Trained from scratch with the same budget" +
                      (f" (mean ± sd over {seeds} training seeds)" if seeds > 1 else ""))


def scratch_figure(results: Mapping[str, dict | Sequence[dict]],
                   title: str = "Test accuracy after training from scratch"):
    """A bar per trained genotype at its mean test accuracy, ± one standard deviation over its training seeds, and
    each seed's accuracy as a dot; parameters in the label. Bars start at zero."""
    from nasviz.notebooks.seeds import spread_figure

    runs = _per_seed(results)
    groups = {f"{name}<br>{rs[0]['params']:,} params": [(f"seed {r['config']['seed']}", r["test_accuracy"])
                                                          for r in rs] for name, rs in runs.items()}
    seeds = max((len(rs) for rs in runs.values()), default=0)
    # bars start at zero: a cut axis would blow differences within the noise up into visible gaps
    return spread_figure(groups, title + (f"<br><sup>mean ± sd over {seeds} training seeds; dots: each seed</sup>"
                                          if seeds > 1 else ""), "test accuracy", y_range=(0.0, 1.08))


def train_over_seeds(genotype, data, budget: Mapping[str, Any], seeds: Sequence[int], label: str = "",
                     on_model: Callable[[Any], None] | None = None) -> list[dict]:
    """`genotype` trained from scratch once per training seed with the same budget (`budget`: ScratchConfig
    settings without the seed); prints one line per training. `on_model` receives the first seed's network."""
    from nasviz.train.scratch import ScratchConfig, train_from_scratch

    results = []
    for k, seed in enumerate(seeds):
        config = ScratchConfig.from_settings({**budget, "seed": seed})
        hand_over = on_model if k == 0 and on_model is not None else None
        result = train_from_scratch(genotype, data, config, progress=False, on_model=hand_over)
        results.append(result)
        print(f"{label}{' · ' if label else ''}seed {seed}: test accuracy {result['test_accuracy']:.4f} "
              f"({result['wall_time_s']:.0f} s)", flush=True)
    return results


def mean_accuracy(runs: dict | Sequence[dict]) -> float:
    """Mean test accuracy of one genotype's from-scratch results (one result or a list over seeds)."""
    return spread([r["test_accuracy"] for r in _per_seed({"": runs})[""]])["mean"]


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
    from nasviz.errors import suggest

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
