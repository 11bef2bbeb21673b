"""`python -m nasviz table ...`: build, inspect and assemble ground-truth tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nasviz.errors import ConfigError, NasvizError, one_line
from nasviz.options import parse_settings
from nasviz.runs import safe_json
from nasviz.space.genotypes import get_space
from nasviz.table.build import RECIPE_FILE, Plan, build, check_build_folder, load_header, parse_shard, read_rows
from nasviz.table.quality import quality
from nasviz.table.recipe_config import Recipe
from nasviz.table.table import from_rows, load

STARTS_FILE = "starts.jsonl"


def _recipe(pairs: list[str]) -> Recipe:
    """The recipe that `--set KEY=VALUE` pairs make, validated like search's and train's settings."""
    return Recipe.from_settings(parse_settings(pairs))


def machine() -> dict:
    """What produced a build: commit, torch version, CPU model, date (recorded at every start)."""
    import datetime
    import platform
    import subprocess

    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {"commit": commit, "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu,
            "avx512_bf16": "avx512_bf16" in flags, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}


def _check_build(args: argparse.Namespace) -> tuple[int, ...]:
    """The build's numbers, checked before its folder is made (one-line errors); returns the pilot's seeds."""
    from nasviz.settings import Rule

    Rule(low=1, high=256).apply("--threads", args.threads, int, None)
    Rule(low=0, high=100_000).apply("--pilot", args.pilot, int, None)
    if args.limit is not None:
        Rule(low=0).apply("--limit", args.limit, int, None)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r} is not allowed; allowed: integers separated by commas") from None
    if any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {args.seeds!r} is out of range; allowed: integers >= 0")
    parse_shard(args.shard)
    get_space(args.space)
    _recipe(args.set)
    return seeds


def cmd_build(args: argparse.Namespace) -> int:
    from nasviz.runs import rundir

    seeds = _check_build(args)  # the whole recipe is checked before anything is written or torch imported
    out = rundir.check_path(args.out)
    check_build_folder(out)  # a file, or a folder of the user's, is refused before anything is written
    if (out / RECIPE_FILE).exists():
        load_header(out)  # a damaged build folder is refused before anything is added to it
    import torch

    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    argv = sys.argv[1:] if sys.argv[1:2] == ["table"] else ["table", *sys.argv[1:]]
    rundir.append_jsonl(Path(args.out) / STARTS_FILE, {"argv": ["python", "-m", "nasviz", *argv]
                                                       if args.argv is None else args.argv,
                                                       "threads": args.threads, **machine()})
    pilot = None
    if args.pilot:
        pilot = (args.pilot, seeds)

    def report(row: dict, done: int, total: int) -> None:
        print(f"[{done}/{total}] seed {row['seed']} acc {row['test_accuracy']:.4f} {row['seconds']:.1f}s "
              f"{row['genotype'][:80]}", flush=True)

    summary = build(get_space(args.space), _recipe(args.set), args.out, shard=parse_shard(args.shard), plan=Plan(),
                    pilot=pilot, limit=args.limit, on_row=report)
    print(safe_json.dumps(safe_json.finite_or_none(summary)))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if Path(args.folder).is_dir():
        header = load_header(args.folder)
        info = {"space": header["space"], "recipe": header["recipe"], **quality(_rows(args.folder))}
    else:
        t = load(args.folder)
        best = t.best()
        info = {"name": t.name, "space": t.space.name, "architectures": len(t), "recipe": t.recipe,
                "provenance": t.provenance, "noise": t.noise,
                "best": {"genotype": best.genotype, "accuracy": best.accuracy}}
    print(safe_json.dumps(safe_json.finite_or_none(info), indent=2))
    return 0


def cmd_assemble(args: argparse.Namespace) -> int:
    from nasviz.runs import rundir
    from nasviz.runs.out_file import check_out_file

    check_out_file(args.out, args.force)  # before the rows are read: a refusal costs nothing
    header = load_header(args.folder)
    rows = _rows(args.folder)
    if not rows:
        raise ConfigError(f"{args.folder} holds no finished training yet; a table needs at least one (run "
                          "`table build` first)")
    starts = [s for s in rundir.read_jsonl(Path(args.folder) / STARTS_FILE) if isinstance(s, dict)]
    provenance = {
        "built_by": starts,
        "trainings": len(rows),
        "cpu_seconds": round(sum(r.get("cpu_seconds", r["seconds"]) for r in rows), 1),
        "wall_seconds_summed": round(sum(r["seconds"] for r in rows), 1),
        "assembled": machine(),
        "test_set": "the whole test set",
    }
    table = from_rows(args.name, get_space(header["space"]), rows, header["recipe"], provenance)
    table.save(args.out, force=args.force)
    print(f"wrote {args.out}: {len(table)} architectures, {len(rows)} trainings, "
          f"seed tau-b {table.noise['seed_tau_b']['tau_b']}")
    return 0


def _rows(folder: str | Path) -> list[dict]:
    """The build folder's valid rows; one note on stderr says how many damaged ones were skipped and why."""
    skipped: list[str] = []
    rows = read_rows(Path(folder), skipped)
    if skipped:
        print(f"nasviz: note: skipped {len(skipped)} damaged row(s) of {folder} (the first: {skipped[0]})",
              file=sys.stderr)
    return rows


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """Add build, info and assemble under `parser`."""
    sub = parser.add_subparsers(dest="table_command", required=True, help="build, info or assemble")
    b = sub.add_parser("build", help="train (a shard of) every genotype of a space from scratch; resumable")
    b.add_argument("--space", default="mini", help="search space to tabulate (default: mini)")
    b.add_argument("--out", required=True, help="build folder (created; rerun with the same folder to resume)")
    b.add_argument("--shard", default="0/1", help="K/N: this process builds every N-th job from the K-th")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe setting")
    b.add_argument("--pilot", type=int, default=0, help="build a pilot of this many random architectures instead")
    b.add_argument("--seeds", default="0,1,2", help="seeds of every pilot architecture (default: 0,1,2)")
    b.add_argument("--limit", type=int, default=None, help="stop after this many trainings (run again to continue)")
    b.add_argument("--threads", type=int, default=1, help="torch threads (default 1: run shards side by side)")
    b.set_defaults(func=cmd_build)
    b.add_argument("--argv", nargs="*", default=None, help=argparse.SUPPRESS)
    i = sub.add_parser("info", help="a table's provenance and quality (seed-to-seed Kendall tau-b, seed spread)")
    i.add_argument("folder", help="a build folder, a table name (mini-fashion-mnist) or a table file")
    i.set_defaults(func=cmd_info)
    a = sub.add_parser("assemble", help="turn a build folder into a table file (gzip JSON with provenance)")
    a.add_argument("folder", help="build folder")
    a.add_argument("--name", default="mini-fashion-mnist", help="table name (default: mini-fashion-mnist)")
    a.add_argument("--out", required=True, help="table file to write (.json.gz); an existing file is refused")
    a.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    a.set_defaults(func=cmd_assemble)


def add_table_command(sub) -> None:
    """Add `table build|info|assemble` to the nasviz command line."""
    add_subcommands(sub.add_parser("table", help="ground-truth tables: build (resumable, sharded), info, assemble",
                                   description="Ground-truth tables of small search spaces."))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasviz table", description="Ground-truth tables of small search spaces.")
    add_subcommands(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except NasvizError as exc:
        print(f"error: {one_line(exc, None)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
