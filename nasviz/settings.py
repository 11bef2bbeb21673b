"""Declared settings: each field of a configuration dataclass says its type and which values are allowed, and
one validator checks any such configuration, with one-line errors that name the bad value and what is allowed.

    @dataclass
    class Config:
        epochs: int = setting(10, low=1)
        lr: float = setting(0.1, positive=True)
        method: str = setting("sft-ga", choices=("sft-ga", "ga"))

    config = build(Config(), {"epochs": "3"})   # values may be text (command line, papermill); validated
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from nasviz.errors import ConfigError, suggest

C = TypeVar("C")
MAX_SEED = 2**63 - 1
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Rule:
    """What values a setting allows (besides its type); bounds are inclusive except `below`."""

    low: float | str | None = None
    """Smallest value, or the name of the setting whose value is the smallest."""
    high: float | None = None
    below: float | None = None
    """Every value must be smaller than this."""
    positive: bool = False
    even: bool = False
    choices: tuple[str, ...] | None = None
    check: Callable[[str, Any], None] | None = None
    """Called with (name, value); raises ConfigError for a value it refuses."""
    allowed: str | None = None
    """How the error says what is allowed, where the wording built from the bounds does not fit."""
    note: str = ""
    """Said after what is allowed, e.g. why."""

    def apply(self, name: str, value: Any, tp: Any, config: Any) -> None:
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"unknown {name} {value!r}{suggest(value, self.choices)}; "
                              f"allowed: {', '.join(self.choices)}")
        if self.positive and not value > 0:
            raise ConfigError(f"{name}={value} must be a positive number")
        low = getattr(config, self.low) if isinstance(self.low, str) else self.low
        if ((low is not None and value < low) or (self.high is not None and value > self.high)
                or (self.below is not None and value >= self.below) or (self.even and value % 2)):
            raise ConfigError(f"{name}={value} is out of range; allowed: {self.describe(tp, low)}{self.note}")
        if self.check is not None:
            self.check(name, value)

    def describe(self, tp: Any, low: float | None) -> str:
        """What is allowed, in words: 'an integer >= 1', 'an even integer in 2..1024', '[0, 1)', '>= 0'."""
        optional = " or none" if type(None) in typing.get_args(tp) else ""
        if self.allowed:
            return self.allowed + optional
        if int in (typing.get_args(tp) or (tp,)):
            kind = "an even integer" if self.even else "an integer"
            span = f"in {low}..{self.high}" if self.high is not None else f">= {low}"
            return f"{kind} {span}{optional}"
        if self.below is not None:
            return f"[{low}, {self.below}){optional}"
        return (f"[{low}, {self.high}]" if self.high is not None else f">= {low}") + optional


def setting(default: Any, **rule: Any) -> Any:
    """A dataclass field with `default` and the `Rule` its values follow."""
    return dataclasses.field(default=default, metadata={"rule": Rule(**rule)})


def validate(config: Any) -> None:
    """Raise ConfigError (one line naming the value and what is allowed) on the first bad setting of the
    dataclass instance `config`: first every setting's type, then every setting's rule, in field order."""
    hints = typing.get_type_hints(type(config))
    fields = dataclasses.fields(config)
    for f in fields:
        check_type(f.name, getattr(config, f.name), hints[f.name])
    for f in fields:
        value = getattr(config, f.name)
        if "rule" in f.metadata and value is not None:
            f.metadata["rule"].apply(f.name, value, hints[f.name], config)


def build(base: C, values: dict[str, Any], what: str = "setting") -> C:
    """`base` (a configuration dataclass) with `values` replaced, each turned from text into its type where
    given as text (command line, papermill), then validated. An unknown name is an error naming the `what`."""
    names = [f.name for f in dataclasses.fields(base)]
    for key in values:
        if key not in names:
            raise ConfigError(f"unknown {what} {key!r}{suggest(key, names)}; allowed: {', '.join(names)}")
    hints = typing.get_type_hints(type(base))
    config = dataclasses.replace(base, **{key: coerce(key, value, hints[key]) for key, value in values.items()})
    validate(config)
    return config


# --- types ----------------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if args else tp
    name = {bool: "true/false", int: "an integer", float: "a number", str: "text"}.get(base, str(base))
    return name + (" or none" if type(None) in typing.get_args(tp) else "")


def check_type(name: str, value: Any, tp: Any) -> None:
    """Raise `ConfigError` unless `value` has the declared type (bools are not ints, ints are floats) and, if it
    is a float, is finite (no inf or nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name}={value} is not allowed; allowed: a finite number")
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    for t in args:
        if t is type(None) and value is None:
            return
        if t is bool and isinstance(value, bool):
            return
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if t is str and isinstance(value, str):
            return
    raise ConfigError(f"{name}={value!r} has the wrong type; allowed: {_type_name(tp)}")


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Turn text from the CLI or papermill into the field's type; other values pass through unchanged (an int
    given for a float setting becomes a float)."""
    if not isinstance(value, str):
        return float(value) if tp in (float, float | None) and isinstance(value, int) and not isinstance(value, bool) \
            else value
    text = value.strip()
    args = set(typing.get_args(tp)) or {tp}
    if type(None) in args and (text.lower() in ("none", "null") or (not text and str not in args)):
        return None  # blank text is none for a number, but stays blank for text (a blank path is refused)
    if bool in args:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: true or false")
    for t in (int, float):
        if t in args:
            try:
                return t(text)
            except ValueError:
                raise ConfigError(f"{name}={value!r} is not allowed; allowed: {_type_name(tp)}") from None
    return text


# --- checks shared by several configurations -----------------------------------------------------------------
def check_device_name(name: str, device: str) -> None:
    """Raise `ConfigError` unless `device` is auto, cpu, cuda or cuda:N (whether it is present: `pick_device`)."""
    if not (device in DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise ConfigError(
            f"{name}={device!r} is not allowed{suggest(device, DEVICES)}; allowed: auto, cpu, cuda, cuda:N"
        )


def check_folder_or_none(name: str, path: str) -> None:
    """Raise `ConfigError` if `path` exists and is not a folder."""
    if not str(path).strip():
        raise ConfigError(f"{name}={path!r} is blank; allowed: a folder or none")
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{name}={path!r} is not a folder; allowed: a folder or none")


# rules of settings that several configurations have
MAX_CHANNELS = 1024
"""Largest initial channel count accepted (DARTS uses 16 to search, 36 on CIFAR and 48 on ImageNet)."""
MAX_LAYERS = 100
"""Largest number of cells accepted (DARTS uses 8 to search and 20 on CIFAR)."""
CHANNELS = {"low": 2, "high": MAX_CHANNELS, "even": True, "note": " (reduction cells halve it into two parts)"}
"""The rule of every initial-channels setting."""
LAYERS = {"low": 1, "high": MAX_LAYERS}
"""The rule of every number-of-cells setting."""
SEED = {"low": 0, "high": MAX_SEED, "allowed": "an integer in 0..2**63-1"}
"""The rule of every seed setting."""
DEVICE = {"check": check_device_name}
"""The rule of every device setting."""
MAX_LR = 1e6
"""Largest learning rate accepted: larger ones overflow float32 arithmetic in the optimizer (rates far below it
already diverge, which training reports as a one-line error)."""
LR = {"positive": True, "high": MAX_LR, "allowed": "a positive number <= 1e6 (float32 training)"}
"""The rule of every learning-rate setting."""
WEIGHT_DECAY = {"low": 0, "high": 1}
"""The rule of every weight-decay setting (DARTS uses 3e-4)."""
GRAD_CLIP = {"positive": True, "high": 1e6, "allowed": "a positive number <= 1e6"}
"""The rule of every gradient-clipping setting."""
MAX_BATCH = 65536
"""Largest batch accepted (images per step)."""
BATCH = {"low": 2, "high": MAX_BATCH, "note": " (BatchNorm needs 2 images per batch)"}
"""The rule of every training batch size."""
EVAL_BATCH = {"low": 1, "high": MAX_BATCH}
"""The rule of every evaluation batch size."""
MAX_STEPS = 10**9
"""Most training steps (or epochs) a budget may ask for."""
STEPS = {"low": 0, "high": MAX_STEPS}
"""The rule of every step count that may be 0."""
EPOCHS = {"low": 1, "high": 100_000}
"""The rule of every epoch count (DARTS trains 600)."""
MAX_IMAGE_SIZE = 1024
"""Largest image side accepted."""
