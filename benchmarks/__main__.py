"""`python -m benchmarks NAME [NAME ...] [--quick]` (or `all`): one JSON object per benchmark on stdout.

    python -m benchmarks all --quick                  # every benchmark, each in under a minute
    python -m benchmarks step-ratio                   # the full version of one
    python -m benchmarks ranking --set region=6       # override a size (values are JSON, else text)
    python -m benchmarks eval-throughput --threads 1  # torch threads (also given to child processes)

With several benchmarks, a setting that one of them does not take is left out for it (and listed in its
"ignored_settings"); with one benchmark it is an error. Exit code 0 when every benchmark ran (whether or not
its goal was met), 1 when one failed (its JSON then has an "error"), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import traceback

from benchmarks import available, run


def parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def accepted(name: str, kwargs: dict) -> tuple[dict, list[str]]:
    """The settings benchmark `name`'s run() accepts, and the names of those it does not (with several
    benchmarks, `--set tiny=true` applies to those that have a `tiny` size and is ignored by the others)."""
    function = importlib.import_module(available()[name]).run
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs, []
    return {k: v for k, v in kwargs.items() if k in parameters}, sorted(k for k in kwargs if k not in parameters)


def main(argv: list[str] | None = None) -> int:
    names = list(available())
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="benchmarks: " + ", ".join(names) + ", all")
    parser.add_argument("names", nargs="+", metavar="NAME", help="benchmark names, or all")
    parser.add_argument("--quick", action="store_true", help="small sizes: each benchmark in under a minute")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="keyword argument for the benchmark's run(); VALUE is JSON or text")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    parser.add_argument("--out", default=None, help="also append each JSON object as one line to this file")
    args = parser.parse_args(argv)
    chosen = names if args.names == ["all"] else args.names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from: {', '.join(names)}, all")
    kwargs = {}
    for pair in args.set:
        key, sep, value = pair.partition("=")
        if not sep:
            parser.error(f"--set {pair!r} is not KEY=VALUE")
        kwargs[key.strip().replace("-", "_")] = parse_value(value)
    if args.threads is not None:
        from benchmarks.common import set_threads

        set_threads(args.threads)

    failed = False
    for name in chosen:
        try:
            given, ignored = accepted(name, kwargs) if len(chosen) > 1 else (kwargs, [])
            out = run(name, quick=args.quick, **given)
            if ignored:
                out["ignored_settings"] = ignored
        except Exception as exc:  # report and go on with the next benchmark
            failed = True
            out = {"benchmark": name, "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=5)}
        text = json.dumps(out, indent=args.indent)
        print(text, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(out) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
