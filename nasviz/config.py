"""`SearchConfig`: every knob of a search, its presets, and validation before any work starts."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasviz.errors import ConfigError
from nasviz.space import suggest

METHODS = ("sft-ga", "ga", "random")
PATH_SAMPLING = ("population", "region", "uniform")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**63 - 1
MAX_CHANNELS = 1024
"""Largest initial channel count accepted (DARTS uses 16 to search, 36 on CIFAR and 48 on ImageNet)."""
MAX_LAYERS = 100
"""Largest number of cells accepted (DARTS uses 8 to search and 20 on CIFAR)."""
TRAIN_IMAGES = {"fashion-mnist": 60000, "mnist": 60000, "cifar10": 50000, "cifar100": 50000, "svhn": 73257}
"""Training-set sizes of the built-in datasets, so a split that cannot fit is refused before loading."""


@dataclass
class SearchConfig:
    """A search's settings. Start from a preset (`SearchConfig.from_preset('quick', seed=1)`) and override freely."""

    # what and how
    dataset: str = "fashion-mnist"
    data_root: str | None = None
    preset: str = "quick"
    method: str = "sft-ga"
    seed: int = 0
    device: str = "auto"
    # supernet and its training
    channels: int = 8
    layers: int = 5
    batch_size: int = 64
    lr: float = 0.05
    finetune_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    augment: bool = True
    # data split (training set only: weights part and fitness part)
    weight_images: int | None = 20000
    fitness_images: int = 800
    bn_batches: int = 2
    eval_batch_size: int = 250
    # budgets
    warmup_steps: int = 400
    population: int = 10
    generations: int = 6
    finetune_steps: int = 40
    # genetic algorithm
    p_crossover: float = 0.9
    p_mutation: float = 0.2
    # the method's three switches (None: the method's default)
    finetune: bool | None = None
    path_sampling: str = "population"
    reevaluate_parents: bool = True
    # reporting
    record_before: bool = True
    top_k: int = 5
    checkpoint_every: int = 100

    @classmethod
    def from_preset(cls, name: str = "quick", **overrides: Any) -> SearchConfig:
        """A preset's config with `overrides` applied one by one, validated."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}{suggest(name, list(PRESETS))}; allowed: {', '.join(PRESETS)}")
        values = {**PRESETS[name], "preset": name}
        config = cls(**values)
        return config.replace(**overrides)

    def replace(self, **overrides: Any) -> SearchConfig:
        """A copy with `overrides` (values may be strings, as from the CLI or papermill), validated."""
        names = [f.name for f in dataclasses.fields(self)]
        for key in overrides:
            if key not in names:
                raise ConfigError(f"unknown setting {key!r}{suggest(key, names)}; allowed: {', '.join(names)}")
        hints = typing.get_type_hints(SearchConfig)
        values = {key: coerce(key, value, hints[key]) for key, value in overrides.items()}
        config = dataclasses.replace(self, **values)
        config.validate()
        return config

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchConfig:
        return cls().replace(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- the method's defaults --------------------------------------------------------------------------
    @property
    def uses_finetune(self) -> bool:
        """Fine-tuning is on for sft-ga unless switched off; the baselines never fine-tune."""
        return self.method == "sft-ga" if self.finetune is None else self.finetune

    @property
    def offspring_per_generation(self) -> int:
        return self.population

    @property
    def evaluation_budget(self) -> int:
        """New genotypes evaluated in a whole search: the same for every method."""
        return self.population * (self.generations + 1)

    # --- validation --------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `ConfigError` (one line naming the value and what is allowed) on the first bad setting."""
        hints = typing.get_type_hints(SearchConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            check_type(f.name, value, hints[f.name])
        from nasviz.data import check_dataset_name

        dataset = check_dataset_name(self.dataset)
        _choice("method", self.method, METHODS)
        _choice("path_sampling", self.path_sampling, PATH_SAMPLING)
        _choice("preset", self.preset, tuple(PRESETS) + ("custom",))
        check_device_name(self.device)
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed={self.seed} is out of range; allowed: an integer in 0..2**63-1")
        if self.data_root is not None and Path(self.data_root).expanduser().exists() \
                and not Path(self.data_root).expanduser().is_dir():
            raise ConfigError(f"data_root={self.data_root!r} is not a folder; allowed: a folder or none")
        for name in ("batch_size", "fitness_images", "bn_batches", "eval_batch_size",
                     "finetune_steps", "top_k", "checkpoint_every"):
            _at_least(name, getattr(self, name), 1)
        for name in ("warmup_steps", "generations"):
            _at_least(name, getattr(self, name), 0)
        _at_least("population", self.population, 2)
        if self.weight_images is not None:
            _at_least("weight_images", self.weight_images, self.batch_size)
        check_network_size(self.channels, self.layers)
        for name in ("p_crossover", "p_mutation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value} is out of range; allowed: a probability in [0, 1]")
        for name in ("lr", "finetune_lr", "grad_clip"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"{name}={value} must be a positive number")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"momentum={self.momentum} is out of range; allowed: [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay} is out of range; allowed: >= 0")
        if self.method in ("ga", "random") and self.finetune:
            raise ConfigError(
                f"finetune=True contradicts method={self.method!r}, a baseline without fine-tuning; "
                "use method='sft-ga' (the method) to fine-tune"
            )
        if self.top_k > self.population:
            raise ConfigError(f"top_k={self.top_k} exceeds population={self.population}; allowed: 1..population")
        if dataset in TRAIN_IMAGES:
            self.check_train_images(TRAIN_IMAGES[dataset], dataset)

    def check_train_images(self, n_train: int, dataset: str) -> None:
        """Raise `ConfigError` unless the weight and fitness parts fit into `n_train` training images (checked in
        `validate` for a built-in dataset, and once loaded, before any training, for an image folder)."""
        need = self.weight_images if self.weight_images is not None else self.batch_size
        if self.fitness_images + need <= n_train:
            return
        if self.fitness_images >= n_train:
            raise ConfigError(
                f"fitness_images={self.fitness_images} is more than the {n_train} training images {dataset} has; "
                f"allowed: fitness_images <= {max(n_train - need, 0)}"
            )
        if self.weight_images is None:
            raise ConfigError(
                f"fitness_images={self.fitness_images} leaves {n_train - self.fitness_images} of {dataset}'s "
                f"{n_train} training images for the weights, fewer than batch_size={self.batch_size}; "
                f"allowed: fitness_images <= {n_train - need}"
            )
        raise ConfigError(
            f"weight_images={self.weight_images} + fitness_images={self.fitness_images} exceed {dataset}'s "
            f"{n_train} training images; allowed: weight_images + fitness_images <= {n_train}"
        )


def check_device_name(device: str) -> None:
    """Raise `ConfigError` unless `device` is auto, cpu, cuda or cuda:N (availability: `check_device`)."""
    if not (device in DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise ConfigError(
            f"device={device!r} is not allowed{suggest(device, DEVICES)}; allowed: auto, cpu, cuda, cuda:N"
        )


def check_device(device: str) -> None:
    """`check_device_name`, then raise `ConfigError` if a CUDA device is asked for but not present here."""
    check_device_name(device)
    if not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(
            f"device={device!r} is not available: this machine has {count} CUDA device(s); "
            f"allowed: auto, cpu{''.join(f', cuda:{i}' for i in range(count))}"
        )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}{suggest(value, allowed)}; allowed: {', '.join(allowed)}")


def check_network_size(channels: int, layers: int) -> None:
    """Raise `ConfigError` unless `channels` is even and in 2..MAX_CHANNELS and `layers` in 1..MAX_LAYERS."""
    if not 2 <= channels <= MAX_CHANNELS or channels % 2:
        raise ConfigError(f"channels={channels} is out of range; allowed: an even integer in 2..{MAX_CHANNELS} "
                          "(reduction cells halve it into two parts)")
    if not 1 <= layers <= MAX_LAYERS:
        raise ConfigError(f"layers={layers} is out of range; allowed: an integer in 1..{MAX_LAYERS}")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{name}={value} is out of range; allowed: an integer >= {low}")


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
    """Turn text from the CLI or papermill into the field's type; other values pass through unchanged."""
    if not isinstance(value, str):
        return float(value) if tp in (float, float | None) and isinstance(value, int) and not isinstance(value, bool) \
            else value
    text = value.strip()
    args = set(typing.get_args(tp)) or {tp}
    if type(None) in args and text.lower() in ("none", "null", ""):
        return None
    if bool in args:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: true or false")
    if int in args:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not allowed; allowed: {_type_name(tp)}") from None
    if float in args:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not allowed; allowed: {_type_name(tp)}") from None
    return text


PRESETS: dict[str, dict[str, Any]] = {
    # a whole search in well under a minute on a 2-core CPU: for tests and CI
    "smoke": dict(channels=4, layers=3, batch_size=32, weight_images=2000, fitness_images=200, bn_batches=1,
                  eval_batch_size=200, warmup_steps=20, population=4, generations=2, finetune_steps=6, top_k=3,
                  checkpoint_every=10),
    # a live class: the quick preset's network at about half its budget, a whole search in ~2 minutes on a 2-core
    # CPU; warm-up checkpoints every 50 steps, so Stop answers within seconds
    "class": dict(warmup_steps=200, population=8, generations=4, finetune_steps=24, fitness_images=500,
                  checkpoint_every=50),
    # the default demo: a whole search in <= 5 minutes on a 2-core CPU
    "quick": dict(),
    # the paper's scale, CIFAR-10 on a GPU: 8-cell, 16-channel supernet
    "paper": dict(dataset="cifar10", channels=16, layers=8, batch_size=96, lr=0.05, weight_images=25000,
                  fitness_images=5000, bn_batches=4, eval_batch_size=500, warmup_steps=26000, population=50,
                  generations=20, finetune_steps=520, top_k=10, checkpoint_every=1000),
}
