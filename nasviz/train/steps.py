"""Training and evaluation loops: supernet steps on sampled paths, BatchNorm recalibration, accuracy and
fitness; the device they run on (mixed precision: `train.precision`; from-scratch training: `train.scratch`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.errors import ConfigError, DivergedError
from nasviz.settings import check_device_name
from nasviz.space.cells import CellNetwork
from nasviz.space.genotypes import Genotype
from nasviz.train.precision import autocast

if TYPE_CHECKING:
    from nasviz.train.distributed import Ranks

Batch = tuple[torch.Tensor, torch.Tensor]
PathSampler = Callable[[], Genotype]
"""Returns the path (genotype) to train next; the search engine plugs in its strategies."""


def pick_device(requested: str = "auto") -> torch.device:
    """The device to run on: 'auto' is CUDA when present, else the CPU. ConfigError for a device name that is not
    allowed or a CUDA device this machine does not have."""
    check_device_name("device", requested)
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(requested.partition(":")[2] or 0) >= count:
            raise ConfigError(
                f"device={requested!r} is not available: this machine has {count} CUDA device(s); "
                f"allowed: auto, cpu{''.join(f', cuda:{i}' for i in range(count))}"
            )
    return torch.device(requested)


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to `device` in channels_last memory format (1.3-2.4x faster for these cells on a CPU)."""
    return model.to(device=device, memory_format=torch.channels_last)


def check_finite(loss: torch.Tensor | float, step: int, lr: float, phase: str) -> float:
    """Return the loss as a float, or raise `DivergedError` naming the phase, step and learning rate."""
    value = loss.item() if isinstance(loss, torch.Tensor) else loss
    if not math.isfinite(value):
        raise DivergedError(
            f"{phase} diverged: loss is {value} at step {step} with learning rate {lr:g}; "
            "lower the learning rate or the gradient clip"
        )
    return value


@dataclass(frozen=True)
class StepResult:
    """What one training step measured on its batch (the global batch's, when several processes trained it)."""

    loss: float
    accuracy: float
    logits: torch.Tensor


def train_step(
    model: nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    params: list[torch.Tensor],
    *,
    grad_clip: float,
    step: int,
    phase: str,
    lr: float | None = None,
    genotype: Genotype | None = None,
    auxiliary_weight: float | None = None,
    ranks: Ranks | None = None,
) -> StepResult:
    """One SGD step, the one every training loop makes (supernet, from-scratch, the table's recipe, the final pick).

    Cross-entropy on `batch` of the network (`genotype`: the supernet's path to run; None for a standalone
    network), plus `auxiliary_weight` times the auxiliary head's loss when that is given (`forward_with_aux`);
    gradients of `params` that have one clipped to norm `grad_clip`. `lr`, if given, is set first; else the
    optimizer's rate is kept. With `ranks` the loss and accuracy are the processes' mean and the gradients are
    averaged over the processes before clipping. `DivergedError` (naming `phase`, `step` and the rate) on a NaN
    or infinite loss, raised on every process together."""
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    lr = optimizer.param_groups[0]["lr"]
    x, y = batch
    with autocast(x.device):
        loss, logits = _loss(model, x, y, genotype, auxiliary_weight)
    if ranks is None:
        loss_value = check_finite(loss, step, lr, phase)
        accuracy_value = (logits.argmax(1) == y).float().mean().item()
    else:  # every process sees the same loss, so all raise together where it is not finite
        loss_value, accuracy_value = ranks.mean([loss.detach(), (logits.argmax(1) == y).float().mean()])
        check_finite(loss_value, step, lr, phase)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if ranks is not None:
        ranks.average_gradients(params)
    nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], grad_clip)
    optimizer.step()
    return StepResult(loss_value, accuracy_value, logits)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, genotype: Genotype | None,
          auxiliary_weight: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss of one batch and the network's logits (see `train_step`)."""
    if auxiliary_weight is not None:
        logits, aux = model.forward_with_aux(x)
        loss = F.cross_entropy(logits.float(), y)
        if aux is not None:
            loss = loss + auxiliary_weight * F.cross_entropy(aux.float(), y)
        return loss, logits
    logits = model(x) if genotype is None else model(x, genotype)
    return F.cross_entropy(logits.float(), y), logits


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
    rates: Sequence[float] | None = None,
    ranks: Ranks | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[dict]:
    """Train the supernet for `steps` steps, each on one sampled path; returns one record per step.

    `rates`, if given, is each step's learning rate (`nasviz.train.schedule`); else the optimizer's rate is kept.
    With `ranks` (several processes, each calling this with the same paths and its slice of the same global
    batches) the gradients are averaged over the processes before clipping, so every process makes the same
    update, and the loss and accuracy recorded are the global batch's (the mean of the processes' own).
    A NaN or infinite loss, or weights that an update made NaN or infinite, raise `DivergedError`.
    `stop`, if given, is asked after every step: when it returns True the remaining steps are left out (the
    records say how many ran), so a Stop button takes effect within one step."""
    model.train()
    params = list(model.parameters())  # once per call: walking the supernet's ~2,900 modules costs ms per step
    if rates is not None and len(rates) != steps:
        raise ValueError(f"{len(rates)} learning rates for {steps} steps")
    records = []
    for step in range(first_step, first_step + steps):
        if rates is not None:
            for group in optimizer.param_groups:
                group["lr"] = rates[step - first_step]
        genotype = sample_path()
        result = train_step(model, next_batch(), optimizer, params, grad_clip=grad_clip, step=step, phase=phase,
                            genotype=genotype, ranks=ranks)
        record = {"phase": phase, "step": step, "loss": result.loss, "accuracy": result.accuracy,
                  "lr": optimizer.param_groups[0]["lr"], "genotype": genotype}
        records.append(record)
        if on_step is not None:
            on_step(record)
        if stop is not None and stop():
            break
    if records:
        _check_weights(params, phase, first_step + len(records) - 1, optimizer.param_groups[0]["lr"])
    return records


def _check_weights(params: list[torch.Tensor], phase: str, step: int, lr: float) -> None:
    """`DivergedError` if a finite loss's update made any of `params` NaN or infinite."""
    maxima = torch.stack([p.detach().abs().max().float() for p in params])
    if not torch.isfinite(maxima).all():
        raise DivergedError(
            f"{phase} diverged: the supernet weights became NaN or infinite at step {step} "
            f"with learning rate {lr:g}; lower the learning rate"
        )


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
def recalibrate_bn(model: CellNetwork, genotype: Genotype, batches: Iterable[Batch], precision: str = "fp32") -> None:
    """Re-estimate BatchNorm statistics for one path as an exact average over `batches` (forward passes in
    `precision`, 'fp32' or 'bf16': see `nasviz.train.precision.autocast`).

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
        with autocast(device, precision):
            model(x, genotype)
    for bn in norms:
        bn.momentum = 0.1
    model.eval()


@torch.inference_mode()
def accuracy(model: CellNetwork, genotype: Genotype | None, batches: Iterable[Batch], precision: str = "fp32") -> float:
    """Top-1 accuracy of the path `genotype` (None for a standalone network) over `batches` (in `precision`)."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    for x, y in batches:
        with autocast(device, precision):
            logits = model(x, genotype) if genotype is not None else model(x)
        correct += (logits.argmax(1) == y).sum().item()
        total += y.numel()
    return correct / max(total, 1)


def fitness(
    model: CellNetwork, genotype: Genotype, calibration: Sequence[Batch], fitness_batches: Sequence[Batch],
    precision: str = "fp32",
) -> float:
    """Fitness with inherited weights: recalibrate BatchNorm on a few training batches, then accuracy (both in
    `precision`, 'fp32' or 'bf16': `nasviz.train.precision.resolve` chooses it from a setting)."""
    recalibrate_bn(model, genotype, calibration, precision)
    return accuracy(model, genotype, fitness_batches, precision)
