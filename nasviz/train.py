"""Training and evaluation loops: supernet steps on sampled paths, BatchNorm recalibration, fitness, and
from-scratch training of a genotype with the DARTS evaluation protocol."""

from __future__ import annotations

import math
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nasviz.cells import CellNetwork
from nasviz.errors import ConfigError, DivergedError
from nasviz.space import Genotype

Batch = tuple[torch.Tensor, torch.Tensor]
PathSampler = Callable[[], Genotype]
"""Returns the path (genotype) to train next; the search engine plugs in its strategies."""


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' is CUDA when present, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to `device` in channels_last memory format (1.3-2.4x faster for these cells on a CPU)."""
    return model.to(device=device, memory_format=torch.channels_last)


def autocast(device: torch.device):
    """Mixed precision (bfloat16) on CUDA; a no-op context on the CPU."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def check_finite(loss: torch.Tensor, step: int, lr: float, phase: str) -> float:
    """Return the loss as a float, or raise `DivergedError` naming the phase, step and learning rate."""
    value = loss.item()
    if not math.isfinite(value):
        raise DivergedError(
            f"{phase} diverged: loss is {value} at step {step} with learning rate {lr:g}; "
            "lower the learning rate or the gradient clip and resume from the last checkpoint"
        )
    return value


def train_steps(
    model: CellNetwork,
    next_batch: Callable[[], Batch],
    optimizer: torch.optim.Optimizer,
    sample_path: PathSampler,
    steps: int,
    *,
    phase: str,
    first_step: int = 0,
    grad_clip: float = 5.0,
    on_step: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train the supernet for `steps` steps, each on one sampled path; returns one record per step."""
    model.train()
    params = list(model.parameters())  # once per call: walking the supernet's ~2,900 modules costs ms per step
    device = params[0].device
    records = []
    for step in range(first_step, first_step + steps):
        genotype = sample_path()
        x, y = next_batch()
        with autocast(device):
            logits = model(x, genotype)
            loss = F.cross_entropy(logits.float(), y)
        lr = optimizer.param_groups[0]["lr"]
        loss_value = check_finite(loss, step, lr, phase)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], grad_clip)
        optimizer.step()
        record = {
            "phase": phase,
            "step": step,
            "loss": loss_value,
            "accuracy": (logits.argmax(1) == y).float().mean().item(),
            "lr": lr,
            "genotype": genotype,
        }
        records.append(record)
        if on_step is not None:
            on_step(record)
    return records


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _path_train_mode(model: nn.Module, modules: list[nn.Module]) -> None:
    """Train mode for what a forward pass of one path runs (the network, its cells and the path's `modules`),
    without walking the ~2,900 modules of a supernet (`model.train()` would; ~6 ms per evaluation)."""
    if not isinstance(model, CellNetwork):
        model.train()
        return
    model.training = True
    for cell in model.cells:
        cell.training = True
    for module in modules:
        module.train()


@torch.no_grad()
def recalibrate_bn(model: CellNetwork, genotype: Genotype, batches: Iterable[Batch]) -> None:
    """Re-estimate BatchNorm statistics for one path as an exact average over `batches`.

    Only the path's BatchNorms are reset and re-estimated (a supernet holds ~10x more, idle on this path);
    the model ends in eval mode."""
    modules = model.path_modules(genotype) if isinstance(model, CellNetwork) else [model]
    norms = [bn for module in modules for bn in batchnorms(module)]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
    _path_train_mode(model, modules)
    device = next(model.parameters()).device
    for x, _ in batches:
        with autocast(device):
            model(x, genotype)
    for bn in norms:
        bn.momentum = 0.1
    model.eval()


@torch.inference_mode()
def accuracy(model: CellNetwork, genotype: Genotype | None, batches: Iterable[Batch]) -> float:
    """Top-1 accuracy of the path `genotype` (None for a standalone network) over `batches`."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    for x, y in batches:
        with autocast(device):
            logits = model(x, genotype) if genotype is not None else model(x)
        correct += (logits.argmax(1) == y).sum().item()
        total += y.numel()
    return correct / max(total, 1)


def fitness(
    model: CellNetwork, genotype: Genotype, calibration: Sequence[Batch], fitness_batches: Sequence[Batch]
) -> float:
    """Fitness with inherited weights: recalibrate BatchNorm on a few training batches, then accuracy."""
    recalibrate_bn(model, genotype, calibration)
    return accuracy(model, genotype, fitness_batches)


@dataclass
class ScratchConfig:
    """From-scratch training of a genotype: DARTS's CIFAR-10 evaluation protocol by default."""

    epochs: int = 600
    channels: int = 36
    layers: int = 20
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cutout: int = 16
    auxiliary_weight: float = 0.4
    drop_path: float = 0.2
    train_size: int | None = None
    """Train on the first `train_size` images of a seeded shuffle (None: the whole training set)."""
    test_size: int | None = None
    seed: int = 0
    device: str = "auto"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> ScratchConfig:
        """A config from `settings` (values may be text, as from the CLI or papermill), validated."""
        from nasviz.config import check_network_size, check_type, coerce
        from nasviz.space import suggest

        names = [f.name for f in fields(cls)]
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in settings.items():
            if key not in names:
                raise ConfigError(f"unknown training setting {key!r}{suggest(key, names)}; allowed: {', '.join(names)}")
            values[key] = coerce(key, value, hints[key])
            check_type(key, values[key], hints[key])
        config = cls(**values)
        check_network_size(config.channels, config.layers)
        for name in ("epochs", "batch_size"):
            if getattr(config, name) < 1:
                raise ConfigError(f"{name}={getattr(config, name)} is out of range; allowed: an integer >= 1")
        for name in ("train_size", "test_size"):
            if getattr(config, name) is not None and getattr(config, name) < 1:
                raise ConfigError(f"{name}={getattr(config, name)} is out of range; allowed: an integer >= 1 or none")
        if not config.lr > 0 or not config.grad_clip > 0:
            raise ConfigError(f"lr={config.lr} and grad_clip={config.grad_clip} must be positive")
        for name in ("drop_path", "momentum"):
            if not 0 <= getattr(config, name) < 1:
                raise ConfigError(f"{name}={getattr(config, name)} is out of range; allowed: [0, 1)")
        if config.cutout < 0 or config.auxiliary_weight < 0 or config.weight_decay < 0:
            raise ConfigError("cutout, auxiliary_weight and weight_decay must be >= 0")
        return config


def train_from_scratch(
    genotype: Genotype,
    data,
    config: ScratchConfig,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
    on_model: Callable[[nn.Module], None] | None = None,
) -> dict:
    """Train `genotype`'s evaluation network on `data` (an `ImageData`) and report test accuracy.

    `on_model`, if given, receives the trained network (in eval mode, on the training device) at the end,
    e.g. to save it with `nasviz.model_file.save_model`."""
    from nasviz.data import BatchStream, crop_padding_for, eval_batches
    from nasviz.network import EvalNetwork, count_flops, count_params

    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    n_train = len(data.train_labels) if config.train_size is None else min(config.train_size, len(data.train_labels))
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(config.seed))[:n_train]
    stream = BatchStream(
        data.train_images[order],
        data.train_labels[order],
        min(config.batch_size, n_train),
        data.mean,
        data.std,
        seed=config.seed,
        crop_padding=crop_padding_for(data.shape),
        flip=data.flip,
        cutout=config.cutout,
        device=device,
        channels_last=True,
    )
    net = EvalNetwork(genotype, data.shape[0], data.num_classes, config.channels, config.layers)
    params, flops = count_params(net), count_flops(net, data.shape)
    net = prepare_model(net, device)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs)
    n_test = len(data.test_labels) if config.test_size is None else min(config.test_size, len(data.test_labels))
    start = time.perf_counter()
    history = []
    for epoch in tqdm(range(config.epochs), desc="train from scratch", disable=not progress):
        net.train()
        net.drop_prob = config.drop_path * epoch / config.epochs
        losses, correct, seen = [], 0, 0
        for step in range(stream.steps_per_epoch):
            x, y = stream.next()
            with autocast(device):
                logits, aux = net.forward_with_aux(x)
                loss = F.cross_entropy(logits.float(), y)
                if aux is not None:
                    loss = loss + config.auxiliary_weight * F.cross_entropy(aux.float(), y)
            lr = scheduler.get_last_lr()[0]
            losses.append(check_finite(loss, epoch * stream.steps_per_epoch + step, lr, "training"))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimizer.step()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
        scheduler.step()
        record = {"epoch": epoch, "train_loss": sum(losses) / len(losses), "train_accuracy": correct / seen}
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    test = eval_batches(
        data.test_images[:n_test], data.test_labels[:n_test], 256, data.mean, data.std, device, channels_last=True
    )
    test_accuracy = accuracy(net, None, test)
    if on_model is not None:
        on_model(net)
    return {
        "genotype": str(genotype),
        "dataset": data.name,
        "test_accuracy": test_accuracy,
        "test_images": n_test,
        "train_images": n_train,
        "params": params,
        "flops": flops,
        "wall_time_s": time.perf_counter() - start,
        "device": str(device),
        "config": asdict(config),
        "history": history,
    }
