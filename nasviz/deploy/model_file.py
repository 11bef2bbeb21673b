"""The trained-model file `model.pt`: a from-scratch network's weights plus everything needed to rebuild it.

The file is a `torch.save`d dict of tensors, numbers, strings and lists only, so it loads with
`torch.load(..., weights_only=True)`; a file that refers to code, is corrupt, or does not describe a network
whose weights it holds is refused with a one-line `CheckpointError` before anything is built from it.

    {"format": "nasviz-model", "version": 1,
     "genotype": "Genotype(normal=[...], ...)",          # DARTS text, parsed (never evaluated) on load
     "dataset": "fashion-mnist", "input_shape": [1, 28, 28], "classes": ["T-shirt/top", ...],
     "mean": [0.286], "std": [0.353],                   # the input normalisation used in training
     "channels": 8, "layers": 5, "auxiliary": true,     # `EvalNetwork` arguments
     "info": {"test_accuracy": 0.87, "params": ..., ...},  # provenance: numbers and text only
     "state_dict": {...}}                               # CPU tensors, contiguous
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasviz.errors import CheckpointError, NasvizError
from nasviz.runs.rundir import atomic_write_bytes, safe_torch_load

MODEL_FILE = "model.pt"
FORMAT = "nasviz-model"
VERSION = 1
MAX_SIDE = 4096
"""Largest image side a model file may declare (a bound on what `predict` and the exports allocate)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about its network: how to rebuild it and how to feed it."""

    genotype: str
    dataset: str
    input_shape: tuple[int, int, int]
    """(channels, height, width) of one input image."""
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    """Inputs are ``(pixel / 255 - mean) / std`` per channel, as in training."""
    channels: int
    layers: int
    auxiliary: bool
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance (test accuracy, parameters, FLOPs, training settings): numbers, text, booleans."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """The file's fields except the weights (lists, not tuples)."""
        return {
            "genotype": self.genotype, "dataset": self.dataset, "input_shape": list(self.input_shape),
            "classes": list(self.classes), "mean": list(self.mean), "std": list(self.std),
            "channels": self.channels, "layers": self.layers, "auxiliary": self.auxiliary, "info": dict(self.info),
        }


def save_model(path: str | Path, net: nn.Module, data: Any, info: Mapping[str, Any] | None = None) -> Path:
    """Write `net` (an `EvalNetwork`, on any device) to `path` atomically, with the dataset facts of `data`
    (anything with `name`, `shape`, `classes`, `mean`, `std`, e.g. an `ImageData`). `info` adds provenance
    (scalars only: numbers, text, booleans, None). Returns `path`."""
    from nasviz.space.network import EvalNetwork

    if not isinstance(net, EvalNetwork):
        raise TypeError(f"save_model saves an EvalNetwork, not a {type(net).__name__}")
    extra = {str(k): v for k, v in (info or {}).items() if _is_scalar(v)}
    model_info = ModelInfo(
        genotype=str(net.genotype), dataset=str(data.name), input_shape=tuple(int(s) for s in data.shape),
        classes=tuple(str(c) for c in data.classes), mean=tuple(float(m) for m in data.mean),
        std=tuple(float(s) for s in data.std), channels=int(net.channels), layers=int(net.layers),
        auxiliary=net.aux_head is not None, info=extra,
    )
    _check_info(model_info, Path(path))  # the same rules as on load, so what is written can be read back
    state = {name: t.detach().to("cpu").contiguous() for name, t in net.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **model_info.to_dict(), "state_dict": state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def scratch_info(result: Mapping[str, Any]) -> dict[str, Any]:
    """Provenance for `save_model` from a `train_from_scratch` result: its numbers and text and the training
    settings (test accuracy, images, params, FLOPs, wall time, device, epochs, seed, ...)."""
    from nasviz.version import __version__

    merged = {**result.get("config", {}), **result, "nasviz_version": __version__}
    return {k: v for k, v in merged.items() if k not in ("genotype", "dataset") and _is_scalar(v)}


def read_model_file(path: str | Path) -> tuple[ModelInfo, dict[str, torch.Tensor]]:
    """The checked description and weights of a model file (see the module docstring), without building it."""
    path = Path(path)
    state = safe_torch_load(path, "model file")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a nasviz model file (format {found!r}, expected {FORMAT!r})")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has model file version {state.get('version')!r}; this nasviz reads {VERSION}")
    fields = ("genotype", "dataset", "input_shape", "classes", "mean", "std", "channels", "layers", "auxiliary")
    missing = [name for name in (*fields, "state_dict") if name not in state]
    if missing:
        raise CheckpointError(f"{path} is not a complete nasviz model file: it lacks {', '.join(missing)}")
    info = state.get("info", {})
    if not isinstance(info, dict) or not all(isinstance(k, str) and _is_scalar(v) for k, v in info.items()):
        raise CheckpointError(f"{path} is not a valid nasviz model file: info must map names to numbers or text")
    try:
        model_info = ModelInfo(
            genotype=_typed(state, "genotype", str), dataset=_typed(state, "dataset", str),
            input_shape=tuple(_int_list(state, "input_shape")), classes=tuple(_str_list(state, "classes")),
            mean=tuple(_float_list(state, "mean")), std=tuple(_float_list(state, "std")),
            channels=_typed(state, "channels", int), layers=_typed(state, "layers", int),
            auxiliary=_typed(state, "auxiliary", bool), info=info,
        )
    except _FieldError as exc:
        raise CheckpointError(f"{path} is not a valid nasviz model file: {exc}") from None
    _check_info(model_info, path)
    weights = state["state_dict"]
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CheckpointError(f"{path} is not a valid nasviz model file: state_dict must map names to tensors")
    return model_info, weights


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the network saved in `path` (see `save_model`), in eval mode on `device`.

    The returned `EvalNetwork` maps normalised images (N x C x H x W, see `.model_info.mean/std`) to logits;
    `.model_info` is the file's `ModelInfo`. A missing, unsafe, corrupt or inconsistent file is a one-line
    `CheckpointError`."""
    from nasviz.space.genotypes import Genotype
    from nasviz.space.network import EvalNetwork

    path = Path(path)
    info, weights = read_model_file(path)
    try:
        genotype = Genotype.parse(info.genotype)
    except NasvizError as exc:
        raise CheckpointError(f"{path} holds an invalid genotype: {exc}") from None
    args = (genotype, info.input_shape[0], info.num_classes, info.channels, info.layers, info.auxiliary)
    with torch.device("meta"):  # compare names and shapes before allocating anything
        expected = {k: tuple(v.shape) for k, v in EvalNetwork(*args).state_dict().items()}
    _check_weights(path, expected, weights)
    net = EvalNetwork(*args)
    net.load_state_dict(weights)
    net.model_info = info
    return net.to(device).eval()


# --- checks -------------------------------------------------------------------------------------------------
class _FieldError(Exception):
    pass


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value))


def _typed(state: dict, name: str, tp: type) -> Any:
    value = state[name]
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise _FieldError(f"{name} is {value!r}; expected {tp.__name__}")
    return value


def _list(state: dict, name: str) -> Sequence:
    value = state[name]
    if not isinstance(value, (list, tuple)) or not value:
        raise _FieldError(f"{name} is {type(value).__name__} {str(value)[:60]!r}; expected a non-empty list")
    return value


def _int_list(state: dict, name: str) -> list[int]:
    values = _list(state, name)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise _FieldError(f"{name} {list(values)[:8]} must hold integers")
    return list(values)


def _float_list(state: dict, name: str) -> list[float]:
    values = _list(state, name)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise _FieldError(f"{name} {list(values)[:8]} must hold finite numbers")
    return [float(v) for v in values]


def _str_list(state: dict, name: str) -> list[str]:
    values = _list(state, name)
    if not all(isinstance(v, str) for v in values):
        raise _FieldError(f"{name} must hold text")
    return list(values)


def _check_info(info: ModelInfo, path: Path) -> None:
    """Raise `CheckpointError` if the description cannot be a network this nasviz builds."""
    from nasviz.errors import ConfigError
    from nasviz.settings import CHANNELS, LAYERS, Rule

    def bad(reason: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a valid nasviz model file: {reason}")

    c, h, w = info.input_shape if len(info.input_shape) == 3 else (0, 0, 0)
    if len(info.input_shape) != 3 or not (1 <= c <= 4 and 1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise bad(f"input_shape {list(info.input_shape)} must be [channels 1..4, height, width 1..{MAX_SIDE}]")
    if len(info.mean) != c or len(info.std) != c or not all(s > 0 for s in info.std):
        raise bad(f"mean {list(info.mean)} and std {list(info.std)} need one value per channel ({c}), std > 0")
    if not 1 <= len(info.classes) <= 100_000:
        raise bad(f"{len(info.classes)} classes; allowed: 1..100000")
    try:
        Rule(**CHANNELS).apply("channels", info.channels, int, info)
        Rule(**LAYERS).apply("layers", info.layers, int, info)
    except ConfigError as exc:
        raise bad(str(exc)) from None


def _check_weights(path: Path, expected: dict[str, tuple[int, ...]], weights: dict[str, torch.Tensor]) -> None:
    """Raise `CheckpointError` unless `weights` has exactly the names and shapes of `expected`."""
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else ""]
        raise CheckpointError(f"{path}: its weights do not fit the network it describes: "
                              f"{', '.join(p for p in parts if p)}")
    for name, shape in expected.items():
        if tuple(weights[name].shape) != shape:
            raise CheckpointError(f"{path}: weight {name} has shape {list(weights[name].shape)}; "
                                  f"the network it describes needs {list(shape)}")
        if weights[name].is_floating_point() != (name.split(".")[-1] != "num_batches_tracked"):
            raise CheckpointError(f"{path}: weight {name} has dtype {weights[name].dtype}, which does not fit")
