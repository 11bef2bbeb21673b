"""What every command of the command line shares (`nasviz.cli` and the commands that `nasviz.headless` and
`nasviz.viz.cli` add to it): argparse with one-line errors, KEY=VALUE settings, and the hints that name a
command's own option for the setting an engine error is about."""

from __future__ import annotations

import argparse

from nasviz.errors import ConfigError, NasvizError, one_line

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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
}
"""(command, setting) -> how to give that setting to that command."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"nasviz: error: {message} (see: {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's, then: a blank or whitespace-only value is refused for every argument (a blank path would
        mean the current folder, a blank name the default)."""
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            value = getattr(namespace, action.dest, None)
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and not v.strip() for v in values) and value is not action.default:
                name = "/".join(action.option_strings) or action.metavar or action.dest
                self.error(f"argument {name}: a blank value {next(v for v in values if isinstance(v, str))!r} is "
                           "not allowed")
        return namespace, extras


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`key=value` pairs from `--set` into a dict of strings (typed later by the config)."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r} is not key=value")
        settings[key.strip()] = value
    return settings


def error_line(exc: NasvizError, command: str | None) -> str:
    """The one line a command prints for an engine error, naming the command's option for its setting."""
    hint = OPTION_HINTS.get((command or "", exc.setting or ""))
    return f"nasviz: error: {one_line(exc, None)}" + (f" ({hint})" if hint else "")
