"""JSON that nasviz can trust both ways: text nested too deeply to parse is damaged text (a `ValueError`, like any
other bad JSON, never a RecursionError), and nothing nasviz writes holds `NaN` or `Infinity` (not JSON)."""

from __future__ import annotations

import json
import math
from typing import Any


def loads(text: str | bytes) -> Any:
    """`json.loads`, but text nested too deeply for Python's stack is a `json.JSONDecodeError`, as any other
    damaged JSON is (never a RecursionError)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply to read", text if isinstance(text, str) else "", 0) from None


def dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that refuses `NaN` and `Infinity` (ValueError naming the first such value's place)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:
        where = non_finite_path(obj)
        raise ValueError(f"{where or 'a value'} is not a finite number; JSON has no NaN or Infinity") from None


def finite_or_none(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, inf) replaced by None: for output that must stay valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def non_finite_path(obj: Any, prefix: str = "") -> str | None:
    """Where the first non-finite float in `obj` is ('wall_time_s', 'top[0].fitness'), or None where there is none."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return f"{prefix or 'the value'}={obj}"
    if isinstance(obj, dict):
        items = ((f"{prefix}.{k}" if prefix else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{prefix}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for name, value in items:
        found = non_finite_path(value, name)
        if found:
            return found
    return None
