"""From-scratch training of a genotype's evaluation network (the DARTS evaluation protocol by default) and its
test accuracy: the last step of the method, and how a class compares architectures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from nasviz import settings
from nasviz.data.batches import BatchStream, crop_padding_for, eval_batches
from nasviz.data.loading import ImageData
from nasviz.errors import ConfigError
from nasviz.settings import (
    BATCH,
    CHANNELS,
    DEVICE,
    EPOCHS,
    GRAD_CLIP,
    LAYERS,
    LR,
    MAX_IMAGE_SIZE,
    SEED,
    WEIGHT_DECAY,
    setting,
)
from nasviz.space.genotypes import Genotype
from nasviz.space.network import EvalNetwork, count_flops, count_params
from nasviz.train import memory, schedule
from nasviz.train.steps import accuracy, pick_device, prepare_model, train_step

LR_SCHEDULES = ("per-batch", "per-epoch")
MIN_BATCH = BATCH["low"]
"""Fewest images a training batch (and so a training set) may have: BatchNorm needs 2."""


@dataclass
class ScratchConfig:
    """From-scratch training of a genotype: DARTS's CIFAR-10 evaluation protocol by default."""

    epochs: int = setting(600, **EPOCHS)
    """Epochs of training (a cosine learning-rate schedule spans them)."""
    lr_schedule: str = setting("per-batch", choices=LR_SCHEDULES)
    """How the cosine learning rate is stepped: per-batch (every step, from `lr` down to 0 after the last one) or
    per-epoch (once an epoch, as nasviz did before: a 3-epoch run trains its last epoch at 25 % of `lr` and never
    anneals to 0)."""
    channels: int = setting(36, **CHANNELS)
    """Initial channels of the evaluation network."""
    layers: int = setting(20, **LAYERS)
    """Cells of the evaluation network; reduction cells at 1/3 and 2/3 of the depth."""
    batch_size: int = setting(96, **BATCH)
    """Images per training step."""
    lr: float = setting(0.025, **LR)
    """Initial learning rate (SGD, cosine-annealed to 0)."""
    momentum: float = setting(0.9, low=0, below=1)
    """SGD momentum."""
    weight_decay: float = setting(3e-4, **WEIGHT_DECAY)
    """SGD weight decay."""
    grad_clip: float = setting(5.0, **GRAD_CLIP)
    """Largest gradient norm of a training step (clipped above)."""
    cutout: int = setting(16, low=0, high=MAX_IMAGE_SIZE)
    """Side of the square cut out of each training image (0: no cutout)."""
    auxiliary_weight: float = setting(0.4, low=0, high=100)
    """Weight of the auxiliary head's loss (DARTS's auxiliary tower; its parameters are not counted)."""
    drop_path: float = setting(0.2, low=0, below=1)
    """Drop-path probability reached at the last epoch (it grows linearly from 0)."""
    train_size: int | None = setting(None, low=MIN_BATCH)
    """Train on the first `train_size` images of a seeded shuffle (None: the whole training set)."""
    test_size: int | None = setting(None, low=1)
    """Test on the first `test_size` test images (None: the whole test set)."""
    seed: int = setting(0, **SEED)
    """Seeds the weights, the shuffle and the augmentation."""
    device: str = setting("auto", **DEVICE)
    """auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."""

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> ScratchConfig:
        """A config from `values` (they may be text, as from the CLI or papermill), validated."""
        return settings.build(cls(), values, what="training setting")

    def validate(self) -> None:
        """Raise `ConfigError` (one line naming the value and what is allowed) on the first bad setting."""
        settings.validate(self)

    def check_data(self, n_train: int, dataset: str) -> None:
        """Raise `ConfigError` unless training on `dataset`'s `n_train` training images can run: a batch needs at
        least 2 images (BatchNorm). Checked before anything is trained or written."""
        if n_train < MIN_BATCH:
            raise ConfigError(f"{dataset} has {n_train} training image(s); training needs at least {MIN_BATCH} "
                              "(BatchNorm needs 2 images per batch)")


def train_from_scratch(
    genotype: Genotype,
    data: ImageData,
    config: ScratchConfig,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = True,
    on_model: Callable[[nn.Module], None] | None = None,
) -> dict:
    """Train `genotype`'s evaluation network on `data` and report its test accuracy.

    `on_model`, if given, receives the trained network (in eval mode, on the training device) at the end,
    e.g. to save it with `nasviz.deploy.model_file.save_model`."""
    config.validate()
    config.check_data(len(data.train_labels), data.name)
    n_train = len(data.train_labels) if config.train_size is None else min(config.train_size, len(data.train_labels))
    c, h, w = data.shape
    memory.check_training(lambda ch: EvalNetwork(genotype, c, data.num_classes, ch, config.layers), c,
                          config.channels, max(h, w), min(config.batch_size, n_train),
                          f"batch_size={config.batch_size} with channels={config.channels}, layers={config.layers} "
                          f"on {h}x{w} images", extra_bytes=n_train * c * h * w, device=pick_device(config.device))
    torch.manual_seed(config.seed)
    device = pick_device(config.device)
    stream, n_train = _training_stream(data, config, device)
    net = EvalNetwork(genotype, data.shape[0], data.num_classes, config.channels, config.layers)
    params, flops = count_params(net), count_flops(net, data.shape)
    net = prepare_model(net, device)
    start = time.perf_counter()
    history = _train(net, stream, config, on_epoch, progress)
    n_test = len(data.test_labels) if config.test_size is None else min(config.test_size, len(data.test_labels))
    test = eval_batches(data.test_images[:n_test], data.test_labels[:n_test], 256, data.mean, data.std, device,
                        channels_last=True)
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


def _training_stream(data: ImageData, config: ScratchConfig, device: torch.device) -> tuple[BatchStream, int]:
    """The augmented training batches (of the first `train_size` images of a seeded shuffle) and their count."""
    n_train = len(data.train_labels) if config.train_size is None else min(config.train_size, len(data.train_labels))
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(config.seed))[:n_train]
    stream = BatchStream(data.train_images[order], data.train_labels[order], min(config.batch_size, n_train),
                         data.mean, data.std, seed=config.seed, crop_padding=crop_padding_for(data.shape),
                         flip=data.flip, cutout=config.cutout, device=device, channels_last=True)
    return stream, n_train


def _train(net: EvalNetwork, stream: BatchStream, config: ScratchConfig, on_epoch: Callable[[dict], None] | None,
           progress: bool) -> list[dict]:
    """Train `net` for `config.epochs` epochs (drop-path growing linearly, the cosine rate stepped per batch or per
    epoch); one record per epoch, each passed to `on_epoch`."""
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    per_epoch = config.lr_schedule == "per-epoch"
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs) if per_epoch else None
    params = list(net.parameters())
    history = []
    for epoch in tqdm(range(config.epochs), desc="train from scratch", disable=not progress):
        net.train()
        net.drop_prob = config.drop_path * epoch / config.epochs
        record = _train_epoch(net, stream, optimizer, params, config, epoch, per_epoch)
        if scheduler is not None:
            scheduler.step()
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history


def _train_epoch(net: EvalNetwork, stream: BatchStream, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                 config: ScratchConfig, epoch: int, per_epoch: bool) -> dict:
    """One epoch of training steps; its record (mean loss, accuracy, first and last learning rate)."""
    losses, correct, seen, rates = [], 0, 0, []
    total = config.epochs * stream.steps_per_epoch
    for step in range(epoch * stream.steps_per_epoch, (epoch + 1) * stream.steps_per_epoch):
        lr = None if per_epoch else schedule.cosine(config.lr, step, total)  # per epoch: the scheduler's rate
        x, y = stream.next()
        result = train_step(net, (x, y), optimizer, params, lr=lr, grad_clip=config.grad_clip, step=step,
                            phase="training", auxiliary_weight=config.auxiliary_weight)
        rates.append(optimizer.param_groups[0]["lr"])
        losses.append(result.loss)
        correct += (result.logits.argmax(1) == y).sum().item()
        seen += y.numel()
    return {"epoch": epoch, "train_loss": sum(losses) / len(losses), "train_accuracy": correct / seen,
            "lr_first": rates[0], "lr_last": rates[-1]}
