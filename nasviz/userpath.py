"""Paths the user typed: `~` and `~user` expanded the way a shell would, or refused in one line."""

from __future__ import annotations

from pathlib import Path

from nasviz.errors import ConfigError


def expand(text: str | Path, setting: str = "path") -> Path:
    """`text` as a Path with a leading `~` or `~user` expanded; ConfigError naming `setting` where that user (or,
    for `~`, a home folder) is unknown, rather than a folder literally named `~...`."""
    path = Path(text)
    if not str(text).startswith("~"):
        return path
    try:
        return path.expanduser()
    except RuntimeError:
        user = str(text).split("/", 1)[0]
        raise ConfigError(f"{setting}={str(text)!r}: {user!r} names no home folder on this machine (unknown user); "
                          "allowed: an existing user's ~name, or a path without ~", setting=setting) from None
