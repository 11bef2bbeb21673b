"""Notebook parameters as papermill hands them over: `-p overrides '{"population": 20}'` arrives as text, so dict
and list parameters also accept their JSON text; numbers are checked against a range before any work.

    overrides = nv.as_dict("overrides", overrides)
    kendall_archs = nv.as_int("kendall_archs", kendall_archs, 2, 200)
"""

from __future__ import annotations

from typing import Any

from nasviz.errors import ConfigError
from nasviz.runs import safe_json
from nasviz.settings import Rule, check_type


def _parsed(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return safe_json.loads(value)
    except ValueError:
        return value


def as_dict(name: str, value: Any) -> dict:
    """`value` as a dict: a dict, or its JSON text (papermill's `-p` form); ConfigError naming `name` otherwise."""
    value = _parsed(value) if value is not None else {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}={value!r} is not a dict; allowed: a dict of settings, e.g. papermill "
                          f"-p {name} '{{\"population\": 20}}' (JSON text) or -y '{name}: {{population: 20}}'")
    return value


def as_list(name: str, value: Any) -> list:
    """`value` as a list: a list or tuple, its JSON text, or comma-separated text; ConfigError otherwise."""
    value = _parsed(value)
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, (list, tuple)) or not value or any(isinstance(v, str) and not v.strip() for v in value):
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: a non-empty list, e.g. papermill "
                          f"-p {name} '[\"sft-ga\", \"random\"]' (JSON text) or -p {name} sft-ga,random")
    return list(value)


def as_int(name: str, value: Any, low: int, high: int) -> int:
    """`value` (an int, or its text) if it lies in low..high; ConfigError naming `name` and the range otherwise."""
    value = _parsed(value)
    check_type(name, value, int)
    Rule(low=low, high=high).apply(name, value, int, None)
    return value


def as_seeds(name: str, value: Any, most: int = 20) -> list[int]:
    """`value` as a list of 1..`most` distinct seeds (non-negative ints; JSON or comma-separated text too)."""
    seeds = as_list(name, value)
    try:
        seeds = [int(s) if isinstance(s, str) else s for s in seeds]
    except ValueError:
        pass
    ok = all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds)
    if not ok or len(set(seeds)) != len(seeds) or len(seeds) > most:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: 1 to {most} distinct seeds (integers >= 0), "
                          f"e.g. [0, 1, 2] or -p {name} 0,1,2")
    return seeds


QUICK_RUNTIME_PRESETS = ("smoke",)
"""Presets whose latency section profiles in eager PyTorch (seconds) unless told otherwise. At `class` onnxruntime
stays the default although its exports took 88 s of 05 on an idle 2-core CPU: in eager PyTorch the sums of the
pieces predicted whole networks poorly (Spearman rho 0.29 against onnxruntime's 0.94, one run each)."""


def as_runtime(name: str, value: Any, preset: str) -> str:
    """The latency runtime: `value` ("torch" or "onnxruntime") checked, or for None the preset's choice — torch at
    smoke, onnxruntime (what `nasviz export` deploys) otherwise. ConfigError naming `name` otherwise."""
    from nasviz.latency.runtime import check_runtime

    if value is None:
        return "torch" if preset in QUICK_RUNTIME_PRESETS else "onnxruntime"
    try:
        return check_runtime(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}={value!r}: {exc}") from None
