"""The project's own exception types: user mistakes are `NasvizError`s with a one-line message."""

from __future__ import annotations

import difflib


class NasvizError(Exception):
    """A user-facing error: bad input, missing data, a corrupt file. Its message is one line.

    `setting` names the argument or setting the error is about (its Python name: `out`, `root`, ...), so that a
    front end can say how to give it there (the command line adds its option); engine messages never name
    command-line options themselves."""

    def __init__(self, message: str = "", *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ConfigError(NasvizError, ValueError):
    """A configuration value is wrong; the message names the value and what is allowed."""


class DataError(NasvizError):
    """A dataset cannot be found or loaded."""


class CheckpointError(NasvizError):
    """A checkpoint or run directory is missing, corrupt, unsafe or does not match the run."""


class DivergedError(NasvizError):
    """Training produced a NaN or infinite loss."""


class RankError(NasvizError):
    """Another process of a search on several processes failed or is gone (`nasviz.train.distributed`)."""

    exit_code = 1
    """Not a usage error: the command line exits with 1."""


def one_line(exc: BaseException | str, limit: int | None = 200) -> str:
    """An exception (or text) as one line: whitespace runs become one space, an empty message becomes the
    exception's type name, and text longer than `limit` characters is cut with '...'."""
    text = " ".join(str(exc).split()) or (type(exc).__name__ if isinstance(exc, BaseException) else "")
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def suggest(value: str, allowed: tuple[str, ...] | list[str]) -> str:
    """Return ' (did you mean X?)' for a close match of `value` in `allowed`, else ''."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
