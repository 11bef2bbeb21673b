"""The latency lesson: which operations are slow for their FLOPs on this machine, FLOPs and predicted against
measured latency of random networks, and a latency limit taken from what a run evaluated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasviz.errors import ConfigError
from nasviz.notebooks.tables import html_table


def op_costs(profile) -> list[dict[str, Any]]:
    """Every timed operation of `profile` (a `nasviz.latency.Profile`): its time, its FLOPs (torch's counter) and
    microseconds per MFLOP, slowest per FLOP first."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from nasviz.latency.layout import pieces

    rows = []
    for piece in pieces(profile.layout)[0]:
        if piece.kind != "op":
            continue
        ms = profile.ops[piece.key]["ms"]
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            piece.module.eval()(torch.zeros(1, *piece.inputs[0]))
        flops = counter.get_total_flops()
        rows.append({"operation": piece.key.split("@")[0], "input (C x H x W) / stride": piece.key.split("@")[1],
                     "ms": round(ms, 4), "MFLOPs": round(flops / 1e6, 3),
                     "µs per MFLOP": round(1e3 * ms / (flops / 1e6), 1) if flops else None})
    return sorted(rows, key=lambda r: -(r["µs per MFLOP"] if r["µs per MFLOP"] is not None else float("inf")))


def op_costs_table(profile, top: int = 12):
    """`op_costs` as a table (the `top` slowest for their FLOPs; parameter-free pooling has no FLOPs at all)."""
    return html_table(op_costs(profile)[:top], caption=f"Operations by time per FLOP ({profile.runtime}, "
                                                       f"{profile.threads} thread(s), batch {profile.batch})")


def latency_figure(report: dict[str, Any]):
    """Two panels from a `nasviz.latency.validate` report: FLOPs vs measured latency, and predicted vs measured
    (with the line predicted = measured)."""
    from plotly.subplots import make_subplots

    rows = report["networks"]
    measured = [r["measured_ms"] for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"FLOPs: Spearman ρ = {report['flops_spearman_rho']:.2f}",
        f"profile's sum: ρ = {report['spearman_rho']:.2f}, MAPE = {report['mape_percent']:.1f} %"))
    fig.add_scatter(x=[r["flops"] / 1e6 for r in rows], y=measured, mode="markers", name="FLOPs", row=1, col=1)
    fig.add_scatter(x=[r["predicted_ms"] for r in rows], y=measured, mode="markers", name="predicted", row=1, col=2)
    low, high = min(measured + [r["predicted_ms"] for r in rows]), max(measured + [r["predicted_ms"] for r in rows])
    fig.add_scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = measured",
                    line={"dash": "dash", "color": "#888"}, row=1, col=2)
    fig.update_xaxes(title_text="MFLOPs per image (search network)", row=1, col=1)
    fig.update_xaxes(title_text="predicted latency (ms)", row=1, col=2)
    fig.update_yaxes(title_text="measured latency (ms)", row=1, col=1)
    fig.update_layout(template="plotly_white", height=420, showlegend=False,
                      title={"text": f"{len(rows)} random networks, measured end to end", "x": 0.01})
    return fig


def with_latency(rows: Sequence[dict], profile) -> list[dict]:
    """History rows with every individual's `latency_ms` predicted by `profile` (for runs made without one)."""
    from nasviz.latency import predict
    from nasviz.space.genotypes import Genotype

    return [{**row, "individuals": [{**i, "latency_ms": predict(Genotype.parse(i["genotype"]), profile)}
                                    for i in row["individuals"]]} for row in rows]


def latency_limit(rows: Sequence[dict], quantile: float = 0.5) -> float:
    """The `quantile` of the predicted latencies in history rows (see `with_latency`): as `max_latency_ms`, it admits
    about that share of the networks the run saw."""
    if not 0 < quantile <= 1:
        raise ConfigError(f"quantile={quantile} is out of range; allowed: (0, 1]")
    values = sorted(i["latency_ms"] for row in rows for i in row["individuals"] if "latency_ms" in i)
    if not values:
        raise ConfigError("the history rows hold no latency_ms; allowed: rows from with_latency or a run with a "
                          "latency profile")
    return round(values[round(quantile * (len(values) - 1))], 4)
