"""The arithmetic of fitness evaluation: float32, or bfloat16 autocast where the processor computes in bf16 itself
(on a CPU without bf16 instructions autocast emulates it, slower than float32, so it falls back to float32)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
"""CPU flags (Linux /proc/cpuinfo: x86's AVX512-BF16 and AMX-BF16, Arm's BF16) that mean native bf16 arithmetic."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The flags (x86) or features (Arm) the first processor of `cpuinfo` lists; empty where it cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this machine's CPU has native bf16 instructions (AVX512-BF16, AMX-BF16 or Arm BF16)."""
    return bool(cpu_flags() & BF16_FLAGS)


def resolve(requested: str, device: torch.device, has_bf16: bool | None = None) -> str:
    """The precision an evaluation on `device` runs in, 'fp32' or 'bf16', for the setting `requested`.

    CUDA: always 'bf16' (autocast, as training). CPU: 'fp32' for fp32; for bf16 and auto, 'bf16' where the CPU has
    bf16 instructions (`has_bf16`, by default `cpu_has_bf16()`), else 'fp32' (bf16 then logs a warning)."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown evaluation precision {requested!r}; allowed: {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        return "bf16"
    if requested == "fp32":
        return "fp32"
    if cpu_has_bf16() if has_bf16 is None else has_bf16:
        return "bf16"
    if requested == "bf16":
        logging.getLogger("nasviz").warning("nasviz: eval_precision='bf16' asked for, but this CPU has no bf16 "
                                            "instructions (avx512_bf16, amx_bf16); evaluating in fp32")
    return "fp32"


def autocast(device: torch.device, precision: str | None = None):
    """The autocast context of a forward pass on `device`: bfloat16 on CUDA; on the CPU bfloat16 when `precision`
    is 'bf16' (see `resolve`), else a no-op (float32)."""
    enabled = device.type == "cuda" or (device.type == "cpu" and precision == "bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
