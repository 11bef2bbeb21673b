"""quick-search: wall time and peak memory of a whole search, as a user runs it.

Runs `python -m nasviz search --preset quick --seed 0 --out TMP --quiet` in a subprocess (`--quick`: the smoke
preset) and reads the child's own peak resident memory (VmHWM, written by the child as it exits: see CHILD).
Reported: the process's wall time (imports, data loading, search, rendering of the best cells), the engine's
own search time (result.json's `search_wall_time_s`), the peak RSS, and the search's step and evaluation
counts with a per-phase split of the engine time from history.jsonl.

Goals: quick preset <= 300 s and <= 1.5 GB; smoke preset <= 60 s ("well under a minute") and <= 1.5 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common

GOALS = {"quick": (300.0, 1.5), "smoke": (60.0, 1.5)}
"""preset -> (wall seconds, peak RSS in GB)."""
TINY = {"warmup_steps": 4, "population": 3, "generations": 1, "finetune_steps": 4, "fitness_images": 64,
        "weight_images": 256, "batch_size": 16, "eval_batch_size": 64, "bn_batches": 1, "top_k": 2}


# Runs `python -m nasviz ARGS` unchanged, then writes the process's own peak RSS (VmHWM) to $NASVIZ_BENCH_HWM.
# Why not ru_maxrss: on Linux a child's ru_maxrss also holds its parent's RSS at the fork (the high-water mark
# of the pre-exec memory is carried over), so a child of a big benchmark process would look big. VmHWM is the
# peak of the process's own memory since its exec.
CHILD = """
import os, runpy, sys
sys.argv = ["nasviz", *sys.argv[1:]]
try:
    runpy.run_module("nasviz", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as f:
        hwm = [line.split()[1] for line in f if line.startswith("VmHWM:")]
    with open(os.environ["NASVIZ_BENCH_HWM"], "w") as f:
        f.write(hwm[0] if hwm else "")
"""


def run_search(preset: str, seed: int, out: Path, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `python -m nasviz search ...` in a child process: its wall time, exit code, peak RSS (bytes) and CPU."""
    args = ["search", "--preset", preset, "--seed", str(seed), "--out", str(out), "--quiet"]
    for key, value in (settings or {}).items():
        args += ["--set", f"{key}={value}"]
    hwm_file = out.parent / f"{out.name}.hwm"
    log_file = out.parent / f"{out.name}.log"
    start = common.now()
    with open(log_file, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "NASVIZ_BENCH_HWM": str(hwm_file)})
        _, status, usage = os.wait4(proc.pid, 0)
    wall = common.now() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    hwm = hwm_file.read_text().strip() if hwm_file.exists() else ""
    shown = ["RUN_DIR" if a == str(out) else a for a in args]  # the temporary folder is no fact of the result
    return {"command": "python -m nasviz " + " ".join(shown), "returncode": proc.returncode, "wall_s": wall,
            "peak_rss_bytes": int(hwm) * 1024 if hwm else usage.ru_maxrss * 1024,
            "peak_rss_source": "VmHWM" if hwm else "ru_maxrss",
            "user_cpu_s": usage.ru_utime, "system_cpu_s": usage.ru_stime,
            "log": log_file.read_text(errors="replace")[-2000:]}


def phase_split(run_dir: Path) -> dict[str, float]:
    """Engine seconds spent in warm-up + initial population, and in the generations (history.jsonl)."""
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if line.strip()]
    walls = [r["wall_time_s"] for r in rows]
    return {"warmup_and_initial_s": walls[0] if walls else 0.0,
            "generations_s": (walls[-1] - walls[0]) if walls else 0.0,
            "per_generation_s": common.rounded(((walls[-1] - walls[0]) / (len(walls) - 1)) if len(walls) > 1 else 0.0,
                                               3)}


def run(quick: bool = False, *, tiny: bool = False, seed: int = 0, preset: str | None = None) -> dict[str, Any]:
    started, load_before = common.now(), common.loadavg()
    preset = preset or ("smoke" if quick or tiny else "quick")
    settings = TINY if tiny else None
    with tempfile.TemporaryDirectory(prefix="nasviz-bench-") as tmp:
        out = Path(tmp) / "run"
        proc = run_search(preset, seed, out, settings)
        if proc["returncode"] != 0:
            raise RuntimeError(f"search failed with exit code {proc['returncode']}:\n{proc['log']}")
        result = json.loads((out / "result.json").read_text())
        phases = phase_split(out)
    wall_goal, rss_goal = GOALS.get(preset, (None, None))
    rss_gb = proc["peak_rss_bytes"] / 1e9
    met = None if wall_goal is None or tiny else (proc["wall_s"] <= wall_goal and rss_gb <= rss_goal)
    return common.result(
        "quick-search",
        figure=f"wall time of a whole {preset} search (process)",
        value=common.rounded(proc["wall_s"], 2),
        unit="s",
        goal=None if wall_goal is None else f"<= {wall_goal:g} s and <= {rss_goal:g} GB peak RSS",
        met=met,
        inputs={"preset": preset, "seed": seed, "settings": settings or {}, "command": proc["command"],
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "tiny": tiny},
        results={"process_wall_s": common.rounded(proc["wall_s"], 2),
                 "peak_rss_gb": common.rounded(rss_gb, 3),
                 "peak_rss_source": proc["peak_rss_source"],
                 "engine_search_wall_s": result["search_wall_time_s"],
                 "startup_and_rendering_s": common.rounded(proc["wall_s"] - result["search_wall_time_s"], 2),
                 **phases,
                 "user_cpu_s": common.rounded(proc["user_cpu_s"], 1),
                 "system_cpu_s": common.rounded(proc["system_cpu_s"], 1),
                 "supernet_steps": result["supernet_steps"],
                 "evaluations": result["evaluations"],
                 "genotypes_evaluated": result["genotypes_evaluated"],
                 "best_fitness": result["best_fitness"],
                 "best_genotype": result["best_genotype"]},
        load_before=load_before,
        started=started,
        notes=["peak RSS is the search process's VmHWM (its own peak since exec; the `dot` renderer it starts is "
               "not counted); the process wall time includes importing torch, loading Fashion-MNIST and "
               "rendering the best cells"],
    )
