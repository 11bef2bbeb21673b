"""What every command of the command line shares (`nasviz.cli` and the commands that `nasviz.headless` and
`nasviz.viz.cli` add to it): argparse with one-line errors, KEY=VALUE settings, and the hints that name a
command's own option for the setting an engine error is about."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from nasviz.errors import ConfigError, NasvizError, one_line
from nasviz.userpath import expand

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
LAUNCHER_ENV = "NASVIZ_LAUNCHER"
"""Set in the processes that `python -m nasviz search --nproc-per-node N` starts (`nasviz.headless.launch`)."""

PATH_ARGUMENTS = frozenset({"out", "resume", "data_root", "root", "model", "run_dir", "folder", "images", "notebook",
                            "genotype"})
"""Arguments that name files or folders: a leading `~` is expanded as a shell would (which it does not after
`--out=`), never taken as a folder named `~`."""

OPTION_HINTS: dict[tuple[str, str], str] = {
    ("search", "out"): "command line: --out DIR; continue a run with --resume DIR",
    ("search", "resume"): "command line: --resume DIR",
    ("search", "force"): "command line: --override accepts it",
    ("search", "root"): "command line: --data-root DIR",
    ("search", "preset"): "command line: --preset NAME",
    ("train", "root"): "command line: --data-root DIR",
    ("data", "root"): "command line: --root DIR",
    ("export", "out"): "command line: --out FILE",
    ("export", "force"): "command line: --force replaces it",
    ("render", "force"): "command line: --force replaces it",
    ("table", "force"): "command line: --force replaces it",
    ("latency", "force"): "command line: --force replaces it",
}
"""(command, setting) -> how to give that setting to that command."""


class _StoreOnce(argparse._StoreAction):
    """argparse's `store`, but an option given twice with different values is a usage error (argparse would take
    the last silently)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault(_GIVEN, {})
        if self.dest in given and given[self.dest] != values and option_string is not None:
            parser.error(f"argument {'/'.join(self.option_strings)}: given twice ({given[self.dest]!r} and "
                         f"{values!r}); allowed: once")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


_GIVEN = "_nasviz_given"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2, and an option given twice with different
    values is one."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def error(self, message: str) -> None:  # type: ignore[override]
        report(f"nasviz: error: {message} (see: {self.prog} --help)")
        self.exit(EXIT_USAGE)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's, then: a blank or whitespace-only value is refused for every argument (a blank path would
        mean the current folder, a blank name the default)."""
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.__dict__.pop(_GIVEN, None)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and not v.strip() for v in values) and value is not action.default:
                name = "/".join(action.option_strings) or action.metavar or action.dest
                self.error(f"argument {name}: a blank value {next(v for v in values if isinstance(v, str))!r} is "
                           "not allowed")
            if action.dest in PATH_ARGUMENTS and any(isinstance(v, str) and v.startswith("~") for v in values):
                try:
                    expanded = [str(expand(v, action.dest)) if isinstance(v, str) else v for v in values]
                except ConfigError as exc:
                    self.error(f"argument {'/'.join(action.option_strings) or action.dest}: {exc}")
                setattr(namespace, action.dest, expanded if isinstance(value, list) else expanded[0])
        return namespace, extras


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`key=value` pairs from `--set` into a dict of strings (typed later by the config)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not key=value")
        key = key.strip()
        if key in settings and settings[key] != value:
            raise ConfigError(f"--set {key}={settings[key]} and --set {pair} conflict; allowed: each setting once")
        settings[key] = value
    return settings


def merge_options(options: dict[str, object], settings: dict[str, str]) -> dict[str, object]:
    """`settings` (from --set) with the command's own `options` (e.g. --epochs) added; a setting given both ways
    is refused (one line), never silently taken from the last."""
    for name, value in options.items():
        if name in settings:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} {value} and --set {name}={settings[name]} conflict; allowed: give {name} once")
    return {**settings, **options}


def report(line: str) -> None:
    """Print a command's one error line on stderr: once for a command that a launcher such as torchrun started
    on several processes (rank 0 prints; every process failed alike, before they could agree); there every
    process also writes it into torchrun's error file, so that torchrun's summary names it as the root cause.
    Under nasviz's own launcher (`nasviz.headless.launch`) no process prints it: the launcher prints one."""
    rank = launched_rank()
    if rank is None or (rank == 0 and not os.environ.get(LAUNCHER_ENV)):
        print(line, file=sys.stderr)
    record_error(line)


def record_error(line: str) -> None:
    """Write `line` into this process's torchrun error file, if a launcher gave it one and it holds none yet."""
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")  # each process's own: torchrun shows the first failure's
    if error_file and launched_rank() is not None and not os.path.exists(error_file):
        with contextlib.suppress(OSError):
            with open(error_file, "w") as f:
                json.dump({"message": {"message": line, "extraInfo": {"py_callstack": line,
                                                                      "timestamp": str(int(time.time()))}}}, f)


def launched_rank() -> int | None:
    """This process's rank where a launcher (torchrun) started the command on several processes, else None (read
    from the environment: no torch import)."""
    try:
        size, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    except ValueError:
        return None
    return rank if size > 1 and "MASTER_ADDR" in os.environ else None


def error_line(exc: NasvizError, command: str | None) -> str:
    """The one line a command prints for an engine error, naming the command's option for its setting."""
    hint = OPTION_HINTS.get((command or "", exc.setting or ""))
    return f"nasviz: error: {one_line(exc, None)}" + (f" ({hint})" if hint else "")
