"""Command line: `python -m nasviz {info,data,search,train,export,predict,render,batch,demo} ...`.

User errors print one line on stderr naming the bad value and what is allowed, and exit with code 2.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from pathlib import Path

from nasviz.errors import ConfigError, NasvizError, one_line
from nasviz.headless import COMMANDS as HEADLESS_COMMANDS
from nasviz.latency.cli import add_latency_command
from nasviz.options import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    error_line,
    merge_options,
    parse_settings,
    record_error,
    report,
)
from nasviz.runs import rundir, safe_json
from nasviz.runs.folder_claim import claim_folder
from nasviz.table.cli import add_table_command
from nasviz.viz.cli import COMMANDS as VIZ_COMMANDS

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]
BAD_PATH_ERRNOS = {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ELOOP}
"""Errors of a path the user gave (too long, under a file, a folder for a file, missing): exit code 2, as for any
bad input; other system errors (disk full, no permission) exit with 1."""


# --- commands -------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from nasviz.data.loading import dataset_info
    from nasviz.settings import MAX_CHANNELS, MAX_LAYERS
    from nasviz.space.network import describe

    if not (1 <= args.layers <= MAX_LAYERS and 2 <= args.channels <= MAX_CHANNELS and args.channels % 2 == 0):
        raise ConfigError(f"--layers {args.layers} / --channels {args.channels}: allowed: layers in 1..{MAX_LAYERS}, "
                          f"even channels in 2..{MAX_CHANNELS}")
    genotype = rundir.genotype_from(args.genotype)
    shape, classes = dataset_info(args.dataset)
    out = {"genotype": str(genotype), "dataset": args.dataset, "layers": args.layers, "channels": args.channels,
           **describe(genotype, shape, classes, args.channels, args.layers)}
    text = (f"{out['genotype']}\n{args.dataset}, {args.layers} cells, {args.channels} channels: "
            f"{out['params'] / 1e6:.3f}M parameters (auxiliary head excluded), {out['flops'] / 1e6:.1f} MFLOPs")
    if args.latency is not None:
        from nasviz.latency import load_profile, predict

        prof = load_profile(args.latency)
        out["latency"] = {"predicted_ms": predict(genotype, prof), "profile": args.latency,
                          "layout": prof.layout.to_dict(), "runtime": prof.runtime, "threads": prof.threads,
                          "batch": prof.batch, "cpu": prof.machine.get("cpu")}
        text += (f"\npredicted latency {out['latency']['predicted_ms']:.3f} ms per call of its search network "
                 f"({prof.layout.describe()}; {prof.runtime}, {prof.threads} thread(s), batch {prof.batch}, "
                 f"{prof.machine.get('cpu')})")
    return _print(out, args.json, text)


def cmd_data(args: argparse.Namespace) -> int:
    from nasviz.data.loading import load_dataset

    data = load_dataset(args.name, args.root, download=not args.offline)
    out = {"name": data.name, "train": len(data.train_labels), "test": len(data.test_labels),
           "classes": data.classes, "shape": list(data.shape), "source": data.source}
    return _print(out, args.json, f"{data.name}: {out['train']} train / {out['test']} test images of shape "
                  f"{tuple(data.shape)}, {len(data.classes)} classes ({', '.join(map(str, data.classes))}); "
                  f"from {data.source}")


def _print(out: dict, as_json: bool, text: str) -> int:
    """Print `out` as one JSON object, or `text`; exit code 0."""
    print(safe_json.dumps(safe_json.finite_or_none(out)) if as_json else text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    """A search here, or on every process that torchrun started (rank 0 writes and prints: `train.distributed`).
    A new search's settings are checked before torch is imported, so a mistake is refused at once."""
    config = _new_search_config(args)
    if args.nproc_per_node is not None:
        return _launch_search(args, config)
    from nasviz.train import distributed

    try:
        return _search(args, config)
    except BaseException as exc:
        if not distributed.silenced(exc):
            raise
        if isinstance(exc, NasvizError):  # rank 0 prints it; a launcher that stops rank 0 first finds it here too
            record_error(error_line(exc, args.command))
            return getattr(exc, "exit_code", EXIT_USAGE)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1


def _launch_search(args: argparse.Namespace, config) -> int:
    """`--nproc-per-node N`: the search on N processes that nasviz starts (`nasviz.headless.launch`), after every
    check that needs no process of them (1: this process runs it)."""
    from nasviz.headless import launch

    nproc = args.nproc_per_node
    launch.check_processes(nproc, getattr(config, "batch_size", None), getattr(config, "device", None))
    if config is not None:
        rundir.check_new(args.out)
    else:
        rundir.check_resumable(args.resume)
    if nproc == 1:
        args.nproc_per_node = None
        return cmd_search(args)
    return launch.run(_search_argv(args), nproc)


def _search_argv(args: argparse.Namespace) -> list[str]:
    """The `search` command line of `args`, without --nproc-per-node (what each launched process runs)."""
    argv = ["search"]
    for name in ("dataset", "data_root", "preset", "seed", "method", "device", "out", "resume"):
        value = getattr(args, name)
        if value is not None:
            argv.append(f"--{name.replace('_', '-')}={value}")
    argv += [f"--set={pair}" for pair in args.set]
    argv += [flag for flag, on in (("--override", args.override), ("--quiet", args.quiet)) if on]
    return argv


def _overrides(args: argparse.Namespace) -> dict:
    options = {name: getattr(args, name) for name in ("dataset", "seed", "method", "device", "data_root")
               if getattr(args, name) is not None}
    return merge_options(options, parse_settings(args.set))


def _new_search_config(args: argparse.Namespace):
    """The options' `SearchConfig` of a new search, validated (torch-free); None for a resume (its settings are
    checked against its checkpoint). One-line errors for every mistake in the options."""
    from nasviz.search.config import SearchConfig

    overrides = _overrides(args)
    if args.override and not args.resume:
        raise ConfigError("--override applies only with --resume DIR (it accepts settings that differ from the run's)")
    if args.resume:
        if args.preset is not None or args.out is not None:
            raise ConfigError("--resume DIR continues a run: give --set/--override for changes, not --preset/--out")
        return None
    if args.out is None:
        raise ConfigError("--out DIR is required (where the run's files go), or --resume DIR")
    rundir.check_path(args.out)
    return SearchConfig.from_preset(args.preset or "quick", **overrides)


def _search(args: argparse.Namespace, config) -> int:
    from nasviz.search.loop import Search

    if config is None:
        search = Search.resume(args.resume, _overrides(args), force=args.override, progress=not args.quiet)
    else:
        search = Search(config, args.out, progress=not args.quiet)

    def on_sigint(*_) -> None:
        """First Ctrl-C: stop after the next checkpoint (exit 130, resumable); a second one: quit now."""
        if search.stop_requested:
            raise KeyboardInterrupt
        search.request_stop()
        if not args.quiet and search.ranks.main:
            print("nasviz: stopping after the next checkpoint (Ctrl-C again to quit now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = search.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    run_dir = search.run_dir
    if result["finished"] and run_dir is not None:
        _render_best(run_dir, result["best_genotype"])
    if not args.quiet and search.ranks.main:
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
    write_cells(genotype_text, run_dir / rundir.BEST_CELLS)


def cmd_train(args: argparse.Namespace) -> int:
    from nasviz.data.loading import check_dataset_name, load_dataset
    from nasviz.deploy.model_file import MODEL_FILE, save_model, scratch_info
    from nasviz.train.scratch import ScratchConfig, train_from_scratch
    from nasviz.train.steps import pick_device

    genotype = rundir.genotype_from(args.genotype)
    check_dataset_name(args.dataset)
    fields = {k: getattr(args, k) for k in ("epochs", "channels", "layers", "batch_size", "train_size",
                                             "test_size", "seed", "device") if getattr(args, k) is not None}
    config = ScratchConfig.from_settings(merge_options(fields, parse_settings(args.set)))
    pick_device(config.device)  # a CUDA device this machine lacks is refused before the data is loaded
    out = rundir.check_output_folder(args.out, (rundir.SCRATCH, MODEL_FILE))
    data = load_dataset(args.dataset, args.data_root)
    config.check_data(len(data.train_labels), data.name)
    files = (rundir.SCRATCH, MODEL_FILE)
    # one writer (two trainings into one folder would overwrite each other); checked again under the lock
    with claim_folder(out, "folder", check=lambda folder, _: rundir.check_output_folder(folder, files)):
        trained = []
        result = train_from_scratch(genotype, data, config, progress=not args.quiet, on_model=trained.append)
        written: list[Path] = []
        try:  # model.pt first, train.json last: train.json never describes a model that is not there
            model_path = save_model(out / MODEL_FILE, trained[0], data, scratch_info(result))
            written.append(model_path)
            rundir.write_json(out / rundir.SCRATCH, result)
        except BaseException:
            for path in written:  # a failed train leaves nothing it made (so the same command can run again)
                path.unlink(missing_ok=True)
            raise
    print(f"test accuracy {result['test_accuracy']:.4f} on {result['test_images']} images; "
          f"{result['params'] / 1e6:.3f}M params, {result['flops'] / 1e6:.1f} MFLOPs; "
          f"{out / rundir.SCRATCH}, {model_path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nasviz.deploy.export import CHECK_BATCH, export_model

    report = export_model(args.model, args.format, args.out, force=args.force)
    print(f"wrote {report.path} ({report.format}, {report.bytes:,} bytes); largest logit difference from the "
          f"PyTorch model on {CHECK_BATCH} random inputs: {report.max_abs_error:.2e}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from nasviz.deploy.model_file import load_model
    from nasviz.deploy.predict import image_files, predict

    if args.top < 1:
        raise ConfigError(f"--top {args.top} is out of range; allowed: an integer >= 1")
    files = image_files(args.images)  # bad paths are reported before the model is loaded
    rows = predict(load_model(args.model), files, top=args.top)
    if args.json:
        print(safe_json.dumps(safe_json.finite_or_none(rows)))
        return 0
    for row in rows:
        print(f"{row['file']}: " + ", ".join(f"{p['class']} {p['probability']:.3f}" for p in row["predictions"]))
    return 0


# --- parser ---------------------------------------------------------------------------------------------
GENOTYPE_HELP = "DARTS genotype text, a fixture name (e.g. DARTS_V2) or a run directory (its best genotype)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nasviz", description="One-shot NAS with supernet fine-tuning (SFT-GA), made visible.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for add_commands in (_add_info_and_data, _add_search, _add_train, _add_export_and_predict,
                         *HEADLESS_COMMANDS, *VIZ_COMMANDS, add_table_command, add_latency_command):
        add_commands(sub)
    return parser


def _add_info_and_data(sub) -> None:
    """The `info` and `data` commands."""
    p = sub.add_parser("info", help="parameters and FLOPs of a genotype's evaluation network")
    p.add_argument("--genotype", required=True, help=GENOTYPE_HELP)
    p.add_argument("--dataset", default="cifar10", help="dataset the network is built for (default cifar10); "
                                                        "a built-in one is not loaded")
    p.add_argument("--layers", type=int, default=20, help="cells of the network (default 20, DARTS on CIFAR)")
    p.add_argument("--channels", type=int, default=36, help="initial channels, even (default 36, DARTS on CIFAR)")
    p.add_argument("--latency", default=None, metavar="PROFILE",
                   help="also print the latency a profile (`nasviz latency profile`) predicts for its search network")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="load a dataset and describe it")
    p.add_argument("name", help="fashion-mnist, mnist, cifar10, cifar100, svhn or imagefolder:PATH")
    p.add_argument("--root", default=None, help="folder holding (or receiving) the dataset files "
                                                "(default $NASVIZ_DATA or ~/.cache/nasviz/data)")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_data)


def _add_search(sub) -> None:
    """The `search` command."""
    p = sub.add_parser("search", help="run (or resume) a search")
    p.add_argument("--dataset", default=None, help="fashion-mnist (default), mnist, cifar10, cifar100, svhn or "
                                                   "imagefolder:PATH")
    p.add_argument("--data-root", default=None, help="folder holding (or receiving) the dataset files")
    p.add_argument("--preset", default=None, help="smoke, class, quick (default) or paper")
    p.add_argument("--seed", default=None, help="seed of every random choice (default 0)")
    p.add_argument("--method", default=None, help="sft-ga (default), ga or random")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--out", default=None, help="run directory to create")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    p.add_argument("--override", action="store_true", help="with --resume: accept settings that differ")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (any SearchConfig field, e.g. population=20); repeatable")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--nproc-per-node", type=int, default=None, metavar="N",
                   help="run the search on N processes of this machine (one per GPU, or N CPU processes), started "
                        "by nasviz: one error line, exit 2 or 130 as with one process (see README, Scaling out)")
    p.set_defaults(func=cmd_search)


def _add_train(sub) -> None:
    """The `train` command (from scratch)."""
    p = sub.add_parser("train", help="train a genotype from scratch (DARTS protocol) and report test accuracy")
    p.add_argument("--genotype", required=True, help=GENOTYPE_HELP)
    p.add_argument("--dataset", default="fashion-mnist", help="dataset to train and test on (default fashion-mnist)")
    p.add_argument("--data-root", default=None, help="folder holding (or receiving) the dataset files")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 600)")
    p.add_argument("--channels", type=int, default=None, help="initial channels, even (default 36)")
    p.add_argument("--layers", type=int, default=None, help="cells (default 20)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default 96)")
    p.add_argument("--train-size", type=int, default=None, help="train on this many images (default: all)")
    p.add_argument("--test-size", type=int, default=None, help="test on this many images (default: all)")
    p.add_argument("--seed", type=int, default=None, help="seed of the weights, shuffle and augmentation (default 0)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one training setting (any ScratchConfig field, e.g. lr=0.05); repeatable")
    p.add_argument("--out", required=True, help=f"folder that receives {rundir.SCRATCH} and model.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _add_export_and_predict(sub) -> None:
    """The `export` and `predict` commands."""
    p = sub.add_parser("export", help="export a trained model.pt to TorchScript or ONNX (checked against PyTorch)")
    p.add_argument("--model", required=True, help="a model.pt written by `nasviz train`")
    p.add_argument("--format", required=True, help="torchscript or onnx (onnx needs: pip install 'nasviz[export]')")
    p.add_argument("--out", required=True, help="file to write, e.g. model.onnx; an existing file is refused")
    p.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="classify image files with a trained model.pt")
    p.add_argument("--model", required=True, help="a model.pt written by `nasviz train`")
    p.add_argument("images", nargs="+", help="PNG/JPEG/... files or folders of them")
    p.add_argument("--top", type=int, default=1, help="how many classes to show per image (default 1)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.set_defaults(func=cmd_predict)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NasvizError as exc:
        report(error_line(exc, args.command))
        return getattr(exc, "exit_code", EXIT_USAGE)
    except OSError as exc:  # the system refused (disk full, permissions): one line, not a traceback
        report(f"nasviz: error: {one_line(exc, None)}")
        return EXIT_USAGE if exc.errno in BAD_PATH_ERRNOS else 1
    except KeyboardInterrupt:
        report("nasviz: interrupted")
        return EXIT_INTERRUPTED
