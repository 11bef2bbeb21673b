"""`python -m nasviz latency {profile,validate}`: time this device's operations, and check the predictions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from nasviz.errors import ConfigError
from nasviz.runs.out_file import check_out_file, write_out_file

if TYPE_CHECKING:
    from nasviz.latency.layout import Layout

LAYOUT_HELP = "the search's settings (a profile is for one network layout: space, images, channels, layers)"


def layout_from(args: argparse.Namespace) -> Layout:
    """The search-width network a search with these settings runs (defaults: the preset's, as `search` has them)."""
    from nasviz.data.loading import dataset_info
    from nasviz.latency.layout import Layout
    from nasviz.search.config import SearchConfig

    given = {k: getattr(args, k) for k in ("space", "dataset", "channels", "layers", "image_size")
             if getattr(args, k) is not None}
    config = SearchConfig.from_preset(args.preset, **given)
    (c, h, w), classes = dataset_info(config.dataset)
    if config.image_size is not None:
        h = w = config.image_size
    return Layout(config.space, c, h, w, classes, config.channels, config.layers)


def _check(name: str, value: int, low: int) -> int:
    if value < low:
        raise ConfigError(f"{name} {value} is out of range; allowed: an integer >= {low}")
    return value


def cmd_profile(args: argparse.Namespace) -> int:
    from nasviz.latency.profile import default_path, make_profile, save_profile
    from nasviz.latency.runtime import check_runtime

    for name, low in (("threads", 1), ("batch", 1), ("repeats", 1), ("warmup", 0)):
        _check(f"--{name}", getattr(args, name), low)
    check_runtime(args.runtime)
    layout = layout_from(args)
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the file to write, e.g. {out / 'profile.json'}")
    if out is not None:
        out = check_out_file(out, args.force)  # an existing file is refused before anything is measured
    prof = make_profile(layout, args.runtime, args.threads, args.batch, warmup=args.warmup, repeats=args.repeats,
                        statistic=args.statistic, progress=not args.quiet)
    path = save_profile(prof, out, args.force) if out is not None else save_profile(prof, default_path(prof), True)
    ops = sorted(prof.ops.items(), key=lambda kv: -kv[1]["ms"])
    print(f"profiled {len(prof.ops)} operation shapes and {len(prof.fixed)} fixed pieces of the {layout.describe()} "
          f"network with {prof.runtime}, {prof.threads} thread(s), batch {prof.batch} on {prof.machine['cpu']}; "
          f"slowest: {ops[0][0]} {ops[0][1]['ms']:.3f} ms ({prof.statistic})")
    print(f"profile: {path}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from nasviz.latency.profile import default_path, load_profile
    from nasviz.latency.validation import validate
    _check("--networks", args.networks, 3)
    if args.out:
        check_out_file(args.out, args.force)  # an existing file is refused before anything is measured
    if args.calibrate and Path(args.calibrate).exists():
        raise ConfigError(f"--calibrate {args.calibrate} exists; give a new file (no file is replaced)")
    _check("--repeats", args.repeats, 1)
    if args.profile:
        prof = load_profile(args.profile)
    else:
        from nasviz.latency.profile import Profile
        from nasviz.latency.runtime import machine

        layout = layout_from(args)
        probe = Profile(layout, args.runtime, args.threads, args.batch, [], {}, {}, 0.0, machine(args.runtime, 1))
        prof = load_profile(default_path(probe), layout)
    report = validate(prof, args.networks, args.seed, warmup=args.warmup, repeats=args.repeats,
                      progress=not args.quiet)
    if args.calibrate:
        from nasviz.latency.profile import save_profile
        from nasviz.latency.validation import calibrated

        save_profile(calibrated(prof, report), args.calibrate)
    if args.out:
        write_out_file(args.out, (json.dumps(report, indent=1) + "\n").encode(), args.force)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "networks"}))
        return 0
    lo, hi = report["measured_ms_range"]
    print(f"{report['networks_measured']} random {prof.layout.space} networks, {prof.runtime}, {prof.threads} "
          f"thread(s), batch {prof.batch}: measured {lo:.3f}..{hi:.3f} ms")
    print(f"predicted vs measured: Spearman rho {report['spearman_rho']:.3f}, MAPE {report['mape_percent']:.1f} %; "
          f"FLOPs vs measured: rho {report['flops_spearman_rho']:.3f}")
    fit = report["calibration"]
    print(f"one fitted factor x{fit['scale']:.3f} would leave MAPE {fit['two_fold_mape_percent']:.1f} % (two-fold)"
          + (f"; calibrated profile: {args.calibrate}" if args.calibrate else ""))
    if args.out:
        print(f"report: {args.out}")
    return 0


def _layout_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network layout", LAYOUT_HELP)
    g.add_argument("--space", default=None, help="darts (default) or mini")
    g.add_argument("--dataset", default=None, help="dataset the search runs on (default fashion-mnist; a built-in "
                                                   "one is not loaded)")
    g.add_argument("--preset", default="quick", help="preset whose channels/layers apply (default quick)")
    g.add_argument("--channels", type=int, default=None, help="initial channels of the search network")
    g.add_argument("--layers", type=int, default=None, help="cells of the search network")
    g.add_argument("--image-size", type=int, default=None, help="images scaled to this size, as the search does")
    g.add_argument("--runtime", default="onnxruntime", help="onnxruntime (default) or torch")
    g.add_argument("--threads", type=int, default=1, help="threads of the runtime (default 1)")
    g.add_argument("--batch", type=int, default=1, help="images per call (default 1)")


def add_latency_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="latency on this device: profile operations, validate the predictions")
    cmds = p.add_subparsers(dest="latency_command", required=True, parser_class=type(p), help="profile or validate")

    q = cmds.add_parser("profile", help="time every operation at every shape of the search network")
    _layout_options(q)
    q.add_argument("--warmup", type=int, default=10, help="untimed calls per piece first (default 10)")
    q.add_argument("--repeats", type=int, default=30, help="timed rounds; medians are reported (default 30)")
    q.add_argument("--statistic", default="median", help="median (default; an idle machine) or min (the fastest "
                                                         "round: a machine that other work shares)")
    q.add_argument("--out", default=None, help="file to write (default: this device's cache folder; printed)")
    q.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_profile)

    q = cmds.add_parser("validate", help="measure random networks end to end against the profile's predictions")
    q.add_argument("--profile", default=None, help="profile file (default: this device's cached one for the layout)")
    _layout_options(q)
    q.add_argument("--networks", type=int, default=50, help="random networks to export and time (default 50)")
    q.add_argument("--seed", type=int, default=0, help="seed of the random networks (default 0)")
    q.add_argument("--warmup", type=int, default=10, help="untimed calls per network first (default 10)")
    q.add_argument("--repeats", type=int, default=30, help="timed rounds; medians are reported (default 30)")
    q.add_argument("--out", default=None, help="write the full report (every network) to this JSON file")
    q.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    q.add_argument("--calibrate", default=None, metavar="FILE", help="write a copy of the profile whose predictions "
                   "are multiplied by the factor fitted here (a new file)")
    q.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.set_defaults(func=cmd_validate)
