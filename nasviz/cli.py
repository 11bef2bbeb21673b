"""Command line: `python -m nasviz {info,data,search,train,render,batch,demo} ...`.

User errors print one line on stderr naming the bad value and what is allowed, and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from nasviz.errors import ConfigError, NasvizError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"nasviz: error: {message} (see: {self.prog} --help)\n")


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`key=value` pairs from `--set` into a dict of strings (typed later by the config)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not key=value")
        settings[key.strip()] = value
    return settings


def _resolve_genotype(text: str):
    """A genotype from DARTS text, a fixture name, or a run directory (its best genotype)."""
    from nasviz.space import Genotype

    path = Path(text)
    try:
        is_run_dir = len(text) < 4096 and path.is_dir() and (path / "result.json").is_file()
    except OSError:  # genotype text is longer than a file name may be (ENAMETOOLONG): not a path
        is_run_dir = False
    if is_run_dir:
        from nasviz.rundir import read_json

        best = read_json(path / "result.json").get("best_genotype")
        if not best:
            raise ConfigError(f"run directory {path} has no best genotype yet")
        return Genotype.parse(best)
    return Genotype.parse(text)


# --- commands -------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from nasviz.data import dataset_info
    from nasviz.network import describe

    genotype = _resolve_genotype(args.genotype)
    shape, classes = dataset_info(args.dataset)
    if args.layers < 1 or args.channels < 2 or args.channels % 2:
        raise ConfigError(f"--layers {args.layers} / --channels {args.channels}: need layers >= 1, even channels >= 2")
    out = {"genotype": str(genotype), "dataset": args.dataset, "layers": args.layers, "channels": args.channels,
           **describe(genotype, shape, classes, args.channels, args.layers)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['genotype']}\n{args.dataset}, {args.layers} cells, {args.channels} channels: "
              f"{out['params'] / 1e6:.3f}M parameters (auxiliary head excluded), {out['flops'] / 1e6:.1f} MFLOPs")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from nasviz.data import load_dataset

    data = load_dataset(args.name, args.root, download=not args.offline)
    out = {"name": data.name, "train": len(data.train_labels), "test": len(data.test_labels),
           "classes": data.classes, "shape": list(data.shape), "source": data.source}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{data.name}: {out['train']} train / {out['test']} test images of shape {tuple(data.shape)}, "
              f"{len(data.classes)} classes ({', '.join(map(str, data.classes))}); from {data.source}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from nasviz.config import SearchConfig
    from nasviz.search import Search

    overrides = parse_settings(args.set)
    for name in ("dataset", "seed", "method", "device"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.data_root is not None:
        overrides["data_root"] = args.data_root
    if args.override and not args.resume:
        raise ConfigError("--override applies only with --resume DIR (it accepts settings that differ from the run's)")
    if args.resume:
        if args.preset is not None or args.out is not None:
            raise ConfigError("--resume DIR continues a run: give --set/--override for changes, not --preset/--out")
        search = Search.resume(args.resume, overrides, force=args.override, progress=not args.quiet)
    else:
        if args.out is None:
            raise ConfigError("--out DIR is required (where the run's files go), or --resume DIR")
        config = SearchConfig.from_preset(args.preset or "quick", **overrides)
        search = Search(config, args.out, progress=not args.quiet)

    def on_sigint(*_) -> None:
        """First Ctrl-C: stop after the next checkpoint (exit 130, resumable); a second one: quit now."""
        if search._stop_requested:
            raise KeyboardInterrupt
        search.request_stop()
        if not args.quiet:
            print("nasviz: stopping after the next checkpoint (Ctrl-C again to quit now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = search.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    run_dir = search.run_dir
    if result["finished"]:
        _render_best(run_dir, result["best_genotype"])
    if not args.quiet:
        state = "finished" if result["finished"] else "stopped (resume with --resume)"
        print(f"search {state}: best fitness {result['best_fitness']}, {result['search_wall_time_s']:.1f} s; "
              f"files in {run_dir}")
        print(result["best_genotype"])
    return 0 if result["finished"] else EXIT_INTERRUPTED


def _render_best(run_dir: Path, genotype_text: str) -> None:
    """Write best_normal.svg / best_reduce.svg beside the run's files (skipped if rendering is unavailable)."""
    try:
        from nasviz.viz.cells import write_cells
    except ImportError:
        return
    write_cells(genotype_text, run_dir / "best")


def cmd_train(args: argparse.Namespace) -> int:
    from nasviz.config import check_device
    from nasviz.data import check_dataset_name, load_dataset
    from nasviz.rundir import write_json
    from nasviz.train import ScratchConfig, train_from_scratch

    genotype = _resolve_genotype(args.genotype)
    check_dataset_name(args.dataset)
    fields = {k: getattr(args, k) for k in ("epochs", "channels", "layers", "batch_size", "train_size",
                                             "test_size", "seed", "device") if getattr(args, k) is not None}
    config = ScratchConfig.from_settings({**fields, **parse_settings(args.set)})
    check_device(config.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    data = load_dataset(args.dataset, args.data_root)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create --out {out}: {exc.strerror or exc}") from None
    result = train_from_scratch(genotype, data, config, progress=not args.quiet)
    write_json(out / "train.json", result)
    print(f"test accuracy {result['test_accuracy']:.4f} on {result['test_images']} images; "
          f"{result['params'] / 1e6:.3f}M params, {result['flops'] / 1e6:.1f} MFLOPs; {out / 'train.json'}")
    return 0


# --- parser ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasviz", description="One-shot NAS with supernet fine-tuning (SFT-GA), made visible.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="parameters and FLOPs of a genotype's evaluation network")
    p.add_argument("--genotype", required=True, help="DARTS genotype text, a fixture name (DARTS_V2) or a run dir")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="load a dataset and describe it")
    p.add_argument("name", help="fashion-mnist, mnist, cifar10, cifar100, svhn or imagefolder:PATH")
    p.add_argument("--root", default=None, help="folder holding (or receiving) the dataset files")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("search", help="run (or resume) a search")
    p.add_argument("--dataset", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--preset", default=None, help="smoke, class, quick (default) or paper")
    p.add_argument("--seed", default=None)
    p.add_argument("--method", default=None, help="sft-ga (default), ga or random")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="run directory to create")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    p.add_argument("--override", action="store_true", help="with --resume: accept settings that differ")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train", help="train a genotype from scratch (DARTS protocol) and report test accuracy")
    p.add_argument("--genotype", required=True)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    from nasviz.headless import COMMANDS as notebook_commands  # demo, batch
    from nasviz.viz.cli import add_commands as add_viz_commands  # render, report

    for extra in (*notebook_commands, add_viz_commands):
        extra(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NasvizError as exc:
        print(f"nasviz: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the system refused (disk full, permissions): one line, not a traceback
        print(f"nasviz: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nasviz: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
