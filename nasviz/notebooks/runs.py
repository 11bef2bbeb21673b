"""A run's files, and reading a folder of runs (result.json, config.json, history.jsonl) to compare them."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasviz.errors import NasvizError
from nasviz.notebooks.tables import display_html, html_table
from nasviz.runs import rundir
from nasviz.runs.regular_files import read_text


def run_files(run_dir: str | Path):
    """The files of a run directory with their sizes and what each holds."""
    run_dir = Path(run_dir)
    rows = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        name = str(path.relative_to(run_dir))
        what = rundir.FILES.get(name, rundir.FILES[rundir.REPORT] if name.endswith(".html") else "")
        rows.append({"file": name, "size": _size(path.stat().st_size), "what it holds": what})
    return html_table(rows, caption=str(run_dir))


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def show_json(path: str | Path):
    """A JSON file, pretty-printed (HTML, so that it survives the HTML export)."""
    text = json.dumps(json.loads(read_text(path)), indent=2)
    return display_html(f"<b>{html.escape(str(path))}</b><pre style='font-size:12px'>{html.escape(text)}</pre>")


def find_runs(runs_dir: str | Path) -> list[dict]:
    """Every run directory under `runs_dir` (itself included; see `nasviz.runs.rundir.is_run_dir`).

    Each run is a dict: name (path relative to `runs_dir`), path, config, result, rows (history), parameters
    (the notebook parameters a batch recorded beside or above it, if any). A missing `runs_dir` gives no runs
    (and says so)."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        print(f"runs_dir {str(root)!r} is not a folder (yet); no runs to read")
        return []
    runs = []
    for folder in rundir.find_run_dirs(root):
        try:
            rows = rundir.load_history(folder, check=True)
            result = rundir.load_result(folder) or {}
            config = rundir.load_config(folder) or {}
        except NasvizError as exc:  # a damaged run is left out, the others are read
            print(f"left out {folder}: {exc}")
            continue
        parameters = rundir.load_parameters(folder) or {}
        name = str(folder.relative_to(root)) if folder != root else root.name
        if name.endswith(f"/{rundir.RUN_SUBDIR}") and parameters:  # batch layout DIR/<point>/run: the point's name
            name = name[: -len(rundir.RUN_SUBDIR) - 1]
        runs.append({"name": name, "path": folder, "config": config, "result": result, "rows": rows,
                     "parameters": parameters})
    return runs


def select_runs(runs: Sequence[dict], **criteria: Any) -> list[dict]:
    """The runs whose settings equal every criterion that is not None, e.g. `select_runs(runs, preset="smoke")`."""
    wanted = {k: v for k, v in criteria.items() if v is not None}
    return [run for run in runs if all(_setting(run, k) == v for k, v in wanted.items())]


def comparable_runs(runs: Sequence[dict], finished_only: bool = True) -> list[dict]:
    """The runs that can be compared: finished ones (unless `finished_only` is False), and, when they mix presets
    or datasets, only those of the most common (preset, dataset); prints a warning for whatever it leaves out."""
    from collections import Counter

    kept = list(runs)
    if finished_only:
        unfinished = [r["name"] for r in kept if not r["result"].get("finished")]
        kept = [r for r in kept if r["result"].get("finished")]
        if unfinished:
            print(f"warning: left out {len(unfinished)} unfinished run(s) ({', '.join(unfinished[:5])}"
                  f"{', ...' if len(unfinished) > 5 else ''}); finished_only=False shows them")

    def kind(run: dict) -> tuple[str, str]:
        return (str(_setting(run, "preset")), str(_setting(run, "dataset")))

    counts = Counter(kind(r) for r in kept)
    if len(counts) > 1:
        (preset, dataset), _n = counts.most_common(1)[0]
        others = sorted(f"{p} on {d}" for p, d in counts if (p, d) != (preset, dataset))
        print(f"warning: these runs mix presets or datasets, whose fitness values are not comparable; showing the "
              f"{counts[(preset, dataset)]} run(s) of preset {preset!r} on {dataset}, leaving out: {', '.join(others)} "
              "(set preset= and dataset= to choose)")
        kept = [r for r in kept if kind(r) == (preset, dataset)]
    return kept


def _setting(run: dict, key: str) -> Any:
    return run["config"].get(key, run["result"].get(key, run["parameters"].get(key)))


def runs_table(runs: Sequence[dict]):
    """One line per run: method, switches, dataset, preset, seed, progress, best fitness, cost."""
    rows = []
    for run in runs:
        result, config = run["result"], run["config"]
        last = run["rows"][-1] if run["rows"] else None
        switches = result.get("switches", {})
        rows.append({
            "run": run["name"],
            "method": result.get("method", config.get("method")),
            "fine-tune": switches.get("finetune"),
            "sampling": switches.get("path_sampling", config.get("path_sampling")),
            "dataset": result.get("dataset", config.get("dataset")),
            "preset": result.get("preset", config.get("preset")),
            "seed": result.get("seed", config.get("seed")),
            "generations": f"{last['generation'] if last else '-'}/{config.get('generations', '?')}",
            "best fitness": last["best"]["fitness"] if last else None,
            "best params": result.get("best_params"),
            "evaluations": last["evaluations"] if last else None,
            "supernet steps": last["supernet_steps"] if last else None,
            "search time (s)": result.get("search_wall_time_s"),
            "finished": result.get("finished"),
        })
    return html_table(rows, caption=f"{len(rows)} run(s)")


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def _style_keys(runs: Sequence[dict]) -> tuple[list[str], list[str]]:
    """Each run's colour key (the settings that differ between the runs, the seed left out: in a sweep, the
    method) and dash key (its seed)."""
    configs = [run.get("config") or {} for run in runs]
    varying = sorted({k for c in configs for k in c if k != "seed" and len({repr(o.get(k)) for o in configs}) > 1})
    return ([repr([c.get(k) for k in varying]) for c in configs], [str(c.get("seed", "?")) for c in configs])


def compare_figure(runs: Sequence[dict], title: str = "Runs side by side"):
    """Best and mean population fitness per generation (left: best, right: mean): one colour per kind of run (the
    settings that differ, seed aside: in a sweep, the method), one dash per seed. A long `title` may break lines
    with <br>."""
    import plotly.express as px
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=("best fitness", "mean fitness of the population"))
    colors = px.colors.qualitative.Plotly
    kinds, seeds = _style_keys(runs)
    kind_order, seed_order = list(dict.fromkeys(kinds)), sorted(set(seeds), key=lambda s: (len(s), s))
    for run, kind, seed in zip(runs, kinds, seeds, strict=True):
        gens = [r["generation"] for r in run["rows"]]
        line = {"color": colors[kind_order.index(kind) % len(colors)],
                "dash": DASHES[seed_order.index(seed) % len(DASHES)]}
        fig.add_trace(go.Scatter(x=gens, y=[r["best"]["fitness"] for r in run["rows"]], mode="lines+markers",
                                 name=run["name"], legendgroup=run["name"], line=line), row=1, col=1)
        fig.add_trace(go.Scatter(x=gens, y=[r["mean_fitness"] for r in run["rows"]], mode="lines+markers",
                                 name=run["name"], legendgroup=run["name"], showlegend=False, line=line),
                      row=1, col=2)
    # a short axis title (a long one ran into the figure title) and room above the subplot titles
    fig.update_layout(title={"text": title, "x": 0.01, "y": 0.97, "yanchor": "top"}, template="plotly_white",
                      height=460, legend={"orientation": "h", "y": -0.22},
                      margin={"l": 60, "r": 20, "t": 100, "b": 40})
    fig.update_xaxes(title_text="generation", tickmode="linear", dtick=1)
    fig.update_yaxes(title_text="fitness (inherited weights)", row=1, col=1)
    return fig


VALUES = {
    "fitness": ("best fitness (own supernet)", "Final best fitness"),
    "truth": ("true accuracy (table)", "Ground-truth accuracy of each run's answer"),
}
"""What `final_values` can read from each run: its final best fitness, or (runs judged by a ground-truth table:
the `mini` space with `table=`) the table's test accuracy of the network it returned."""


def has_truth(runs: Sequence[dict]) -> bool:
    """Whether every run records the ground truth of what it returned (result.json's `truth`)."""
    return bool(runs) and all(isinstance(r["result"].get("truth"), dict) for r in runs)


def final_values(runs: Sequence[dict], by: str = "method",
                 value: str = "fitness") -> dict[str, list[tuple[str, float]]]:
    """Each run's final `value` ("fitness" or "truth", see `VALUES`), grouped by a setting (`by`: a config key,
    e.g. method or seed), labelled with the run's name. Runs without that value are left out."""
    if value not in VALUES:
        raise ValueError(f"value={value!r} is not allowed; allowed: {', '.join(VALUES)}")
    groups: dict[str, list[tuple[str, float]]] = {}
    for run in runs:
        if value == "fitness":
            found = run["rows"][-1]["best"]["fitness"] if run["rows"] else None
        else:
            found = (run["result"].get("truth") or {}).get("best_accuracy")
        if found is None:
            continue
        key = str(run["config"].get(by, run["parameters"].get(by, "?")))
        groups.setdefault(key, []).append((run["name"], float(found)))
    return groups


def final_best_figure(runs: Sequence[dict], by: str = "method", value: str = "fitness"):
    """Final `value` of each run grouped by a setting (`by`): a bar at each group's mean, ± one standard deviation
    over its runs (e.g. seeds), and every run as a dot. The axis starts at zero."""
    from nasviz.notebooks.seeds import spread_figure

    groups = final_values(runs, by, value)
    y_title, title = VALUES[value]
    most = max((len(v) for v in groups.values()), default=0)
    return spread_figure(groups, f"{title} by {by}" + (f"<br><sup>mean ± sd over up to {most} runs per group; "
                                                        "dots: each run</sup>" if most > 1 else ""), y_title)


def final_best_table(runs: Sequence[dict], by: str = "method", value: str = "fitness"):
    """The numbers of `final_best_figure`: per group, n, mean ± sd, min, max and each run's value."""
    from nasviz.notebooks.seeds import spread_table

    return spread_table(final_values(runs, by, value), caption=f"{VALUES[value][1]} by {by}", group=by)
