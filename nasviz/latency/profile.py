"""Latency profiles: time every piece of a layout's networks once, then predict any genotype's latency by a sum.

    prof = make_profile(Layout("darts", 1, 28, 28, 10, 8, 5), runtime="onnxruntime", threads=1)
    save_profile(prof, default_path(prof))
    predict(genotype, prof)              # milliseconds per call (batch `prof.batch`)

What a sum of separately timed operations misses, and how it is handled:
- the work every network does whatever its genotype (stem, preprocessing, node sums and concatenation, head) is
  timed as pieces of its own ("fixed"), so the prediction holds all of the network's computation;
- a call's own cost (the runtime's dispatch, handing inputs in and outputs out) is in every timed piece: the
  time of an empty call with the same inputs is subtracted from each piece, and added once for the network;
- what is left: a piece timed alone finds its input in cache where the network may not, and the runtime may
  fuse across pieces in the whole network. `nasviz.latency.validate` measures how much that matters, and fits
  one factor (`scale`, least squares through the origin) that a calibrated copy of the profile multiplies the
  sum by; it changes no ranking.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nasviz.errors import ConfigError
from nasviz.latency import runtime as rt
from nasviz.latency.layout import CellShape, Layout, edge_input, edge_stride, genotype_ops, is_free, op_key, pieces
from nasviz.runs import safe_json
from nasviz.runs.regular_files import NotRegularFile, read_text
from nasviz.space.genotypes import Genotype, GenotypeError, get_space

FORMAT = "nasviz-latency-profile"
VERSION = 1
MAKE = "python -m nasviz latency profile"
"""The command that makes a profile (named in errors about a missing or unusable one)."""


@dataclass
class Profile:
    """A layout's timed pieces on one device: `fixed` (stem, per cell preprocessing and combine, head) and `ops`
    (per operation, input shape and stride), each {ms, median_ms, min_ms, spread_ms, samples, ...}, where `ms`, the
    time `predict` adds, is the `statistic` (median or min) of the piece's calls less that of an empty call with
    the same inputs; `overhead_ms`: the statistic of an empty call on the network's input (once per network)."""

    layout: Layout
    runtime: str
    threads: int
    batch: int
    cells: list[CellShape]
    fixed: dict[str, dict[str, float]]
    ops: dict[str, dict[str, float]]
    overhead_ms: float
    machine: dict[str, Any]
    statistic: str = "median"
    timing: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    scale: float = 1.0
    """What the sum is multiplied by: 1, or the factor a validation fitted (see `calibration`)."""
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "layout": self.layout.to_dict(), "runtime": self.runtime,
                "threads": self.threads, "batch": self.batch, "overhead_ms": self.overhead_ms,
                "cells": [vars(c) for c in self.cells], "fixed": self.fixed, "ops": self.ops,
                "machine": self.machine, "statistic": self.statistic, "timing": self.timing, "created": self.created,
                "scale": self.scale, "calibration": self.calibration}

    @classmethod
    def from_dict(cls, data: Any, source: str = "the profile") -> Profile:
        """A profile from its JSON content; ConfigError (one line) if it is not one or is incomplete."""
        def bad(why: str) -> ConfigError:
            return ConfigError(f"{source} is not a usable latency profile ({why}); make a new one with: {MAKE}",
                               setting="latency_profile")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise bad(f"its format is not {FORMAT!r}")
        if data.get("version") != VERSION:
            raise bad(f"version {data.get('version')!r}, this nasviz reads version {VERSION}")
        try:
            layout = Layout(**data["layout"])
            get_space(layout.space)
            cells = [CellShape(**c) for c in data["cells"]]
            prof = cls(layout, str(data["runtime"]), int(data["threads"]), int(data["batch"]), cells,
                       {k: _entry(v) for k, v in data["fixed"].items()}, {k: _entry(v) for k, v in data["ops"].items()},
                       float(data["overhead_ms"]), dict(data.get("machine", {})),
                       rt.check_statistic(data.get("statistic", "median")), dict(data.get("timing", {})),
                       str(data.get("created", "")), float(data.get("scale", 1.0)),
                       dict(data.get("calibration", {})))
            if not (math.isfinite(prof.scale) and prof.scale > 0):
                raise ValueError(f"scale {prof.scale}")
        except (KeyError, TypeError, ValueError, GenotypeError, ConfigError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None
        if len(cells) != layout.layers:
            raise bad(f"{len(cells)} cells for layers={layout.layers}")
        missing = _missing(prof)
        if missing:
            raise bad(f"no time for {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        return prof


def _entry(value: Any) -> dict[str, float]:
    ms = float(value["ms"])
    if not math.isfinite(ms):
        raise ValueError(f"ms {ms}")
    return {"ms": ms, **{k: float(v) if k != "samples" else int(v) for k, v in value.items() if k != "ms"}}


def _missing(prof: Profile) -> list[str]:
    """Profile entries a network of the layout needs but the profile lacks."""
    need = {"stem", "head", *(f"cell{i}.{p}" for i in range(len(prof.cells))
                              for p in ("preprocess0", "preprocess1", "combine"))}
    return sorted(need - set(prof.fixed)) + sorted(set(needed_ops(prof.layout.space, prof.cells)) - set(prof.ops))


def needed_ops(space_name: str, cells: list[CellShape]) -> list[str]:
    """The keys of every operation, input shape and stride that the space's networks of these cells run."""
    space = get_space(space_name)
    keys = []
    for cell in cells:
        for inp in range(space.nodes + 1):
            stride = edge_stride(cell, inp)
            keys += [op_key(op, *edge_input(cell, inp), stride) for op in space.ops if not is_free(op, stride)]
    return list(dict.fromkeys(keys))


def make_profile(layout: Layout, runtime: str = "onnxruntime", threads: int = 1, batch: int = 1, *,
                 warmup: int = 10, repeats: int = 30, statistic: str = "median", progress: bool = False,
                 only_ops: tuple[str, ...] | None = None, seed: int = 0) -> Profile:
    """Time every piece of `layout` in `runtime` with `threads` threads at `batch` images per call: `warmup` calls,
    then `repeats` interleaved rounds (see `nasviz.latency.runtime.time_interleaved`); `statistic` ("median", or
    "min" on a machine that other work shares) is what `predict` adds up. `only_ops`: time just these
    operations (a partial profile, for tests); the result cannot predict genotypes using others."""
    runtime = rt.check_runtime(runtime)
    statistic = rt.check_statistic(statistic)
    for name, value, low in (("threads", threads, 1), ("batch", batch, 1), ("repeats", repeats, 1),
                             ("warmup", warmup, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name}={value!r} is out of range; allowed: an integer >= {low}", setting=name)
    parts, cells = pieces(layout, seed)
    if only_ops is not None:
        parts = [p for p in parts if p.kind == "fixed" or p.key.split("@")[0] in only_ops]
    with rt.torch_threads(threads):
        runners: dict[str, rt.Runner] = {}
        empties: dict[tuple, rt.Runner] = {}
        for part in tqdm(parts, desc=f"preparing ({runtime})", disable=not progress, leave=False):
            runners[part.key] = rt.runner(part.module, part.inputs, runtime, batch, threads)
            if part.inputs not in empties:
                empties[part.inputs] = rt.runner(None, part.inputs, runtime, batch, threads)
        network_input = ((layout.in_channels, layout.height, layout.width),)
        empties.setdefault(network_input, rt.runner(None, network_input, runtime, batch, threads))
        empty_keys = {shapes: f"empty:{i}" for i, shapes in enumerate(empties)}
        timed = rt.time_interleaved({**runners, **{empty_keys[s]: r for s, r in empties.items()}}, warmup, repeats,
                                    progress, desc=f"timing {len(runners)} pieces")
    fixed, ops = {}, {}
    for part in parts:
        empty = timed[empty_keys[part.inputs]]
        entry = {"ms": timed[part.key][f"{statistic}_ms"] - empty[f"{statistic}_ms"], **timed[part.key],
                 "empty_median_ms": empty["median_ms"], "empty_min_ms": empty["min_ms"]}
        (ops if part.kind == "op" else fixed)[part.key] = entry
    return Profile(layout, runtime, threads, batch, cells, fixed, ops,
                   overhead_ms=timed[empty_keys[network_input]][f"{statistic}_ms"],
                   machine=rt.machine(runtime, threads), statistic=statistic,
                   timing={"warmup": warmup, "repeats": repeats, "block_s": rt.BLOCK_S,
                           "spread": "interquartile range", "empty_call_subtracted": True},
                   created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def predict(genotype: Genotype, profile: Profile) -> float:
    """Predicted milliseconds per call of `genotype`'s network: the call's own cost, every fixed piece and the
    operation of every edge, from `profile`'s table (times its `scale`, 1 unless calibrated)."""
    return profile.scale * sum(breakdown(genotype, profile).values())


def breakdown(genotype: Genotype, profile: Profile) -> dict[str, float]:
    """`predict`'s terms before its `scale`: "overhead", "fixed" (stem, preprocessing, combine, head) and "ops"."""
    get_space(profile.layout.space).check(genotype)
    keys = genotype_ops(genotype, profile.cells)
    missing = [k for k in keys if k not in profile.ops]
    if missing:
        raise ConfigError(f"the latency profile has no time for {missing[0]} (a partial profile?); make a full one "
                          f"with: {MAKE}", setting="latency_profile")
    return {"overhead": profile.overhead_ms, "fixed": sum(e["ms"] for e in profile.fixed.values()),
            "ops": sum(profile.ops[k]["ms"] for k in keys)}


def fastest(profile: Profile) -> float:
    """The least predicted latency of any genotype of the profile's space (exact: the sum separates by edge).

    Each node picks two distinct inputs and per input the quickest operation; with a tied space one choice serves
    every cell, so a choice costs its sum over all cells."""
    space = get_space(profile.layout.space)
    total = profile.overhead_ms + sum(e["ms"] for e in profile.fixed.values())
    kinds = [None] if space.tied else [False, True]
    for kind in kinds:
        cells = [c for c in profile.cells if kind is None or c.reduction == kind]
        for j in range(space.nodes):
            costs = [min(sum(_op_ms(profile, op, cell, inp) for cell in cells) for op in space.ops)
                     for inp in range(j + 2)]
            total += min(costs[a] + costs[b] for a in range(j + 2) for b in range(a + 1, j + 2))
    return profile.scale * total


def _op_ms(profile: Profile, op: str, cell: CellShape, inp: int) -> float:
    stride = edge_stride(cell, inp)
    if is_free(op, stride):
        return 0.0
    entry = profile.ops.get(op_key(op, *edge_input(cell, inp), stride))
    return math.inf if entry is None else entry["ms"]


# --- files -------------------------------------------------------------------------------------------------------
def cache_folder() -> Path:
    """Where profiles are kept per device: $NASVIZ_CACHE/latency, else the user's cache folder's nasviz/latency."""
    import os

    import platformdirs

    root = os.environ.get("NASVIZ_CACHE")
    return (Path(root) if root else Path(platformdirs.user_cache_dir("nasviz"))) / "latency"


def default_path(prof: Profile) -> Path:
    """The cache file of `prof`: one folder per device, one file per layout, runtime, threads and batch."""
    lay = prof.layout
    name = (f"{lay.space}-{lay.in_channels}x{lay.height}x{lay.width}-k{lay.num_classes}-c{lay.channels}-"
            f"l{lay.layers}-{prof.runtime}-t{prof.threads}-b{prof.batch}.json")
    return cache_folder() / rt.device_name(prof.machine) / name


def save_profile(prof: Profile, path: str | Path, force: bool = False) -> Path:
    """Write `prof` to the new file `path` (atomically; its folder is made); an existing file is refused unless
    `force` (`nasviz.runs.out_file`)."""
    from nasviz.runs.out_file import write_out_file

    return write_out_file(path, (json.dumps(prof.to_dict(), indent=1) + "\n").encode(), force)


def load_profile(path: str | Path, layout: Layout | None = None) -> Profile:
    """The profile in `path`; ConfigError (one line) if it is missing, damaged, or (given `layout`) made for
    another network than `layout`."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        raise ConfigError(f"latency_profile={str(path)!r} does not exist; make one with: {MAKE}"
                          + (f" ({layout.describe()})" if layout else ""), setting="latency_profile")
    try:
        data = safe_json.loads(read_text(path))  # a FIFO or a folder: one line, never waited on; deep JSON: damaged
    except NotRegularFile as exc:
        raise ConfigError(f"latency_profile: {exc}", setting="latency_profile") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"latency_profile={str(path)!r} cannot be read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); make a new one with: {MAKE}",
                          setting="latency_profile") from None
    prof = Profile.from_dict(data, f"latency_profile={str(path)!r}")
    if layout is not None and prof.layout != layout:
        raise ConfigError(f"latency_profile={str(path)!r} times another network ({prof.layout.describe()}) than "
                          f"this one ({layout.describe()}); make one for it with: {MAKE}", setting="latency_profile")
    return prof
