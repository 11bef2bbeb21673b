"""Mini-batches from a dataset held in memory: the train split of search, normalization, augmentation, and
endless shuffled batch streams whose position can be saved and restored.

Images stay ``uint8`` until a batch is made; then they are augmented, converted to float and normalized.
Search splits the training set into a weight part (to train the supernet) and a fitness part (to score
candidates) with `split_indices`; the test set is kept for the final from-scratch training.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from nasviz.errors import CheckpointError, ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]


def check_positive_int(name: str, value: object) -> None:
    """Raise ConfigError unless `value` is an int >= 1 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} {value!r} must be a positive integer")


def split_indices(
    n_train: int, weight_size: int | None, fitness_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n_train) into disjoint (weight, fitness) index tensors, each sorted, chosen by `seed`.

    `weight_size` None takes all the images the fitness part leaves. For a given seed the fitness part does not
    depend on `weight_size`, so changing the weight budget keeps the same fitness images.
    """
    for label, value in (("n_train", n_train), ("fitness_size", fitness_size), ("weight_size", weight_size)):
        if value is not None or label != "weight_size":
            check_positive_int(label, value)
    if fitness_size > n_train - 1:
        raise ConfigError(
            f"fitness_size {fitness_size} is too large: at most {n_train - 1} "
            f"(the training set has {n_train} images and the weight part needs at least 1)"
        )
    if weight_size is None:
        weight_size = n_train - fitness_size
    elif weight_size > n_train - fitness_size:
        raise ConfigError(
            f"weight_size {weight_size} is too large: at most {n_train - fitness_size} "
            f"({n_train} training images minus fitness_size {fitness_size})"
        )
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    fitness = order[:fitness_size]
    weight = order[fitness_size : fitness_size + weight_size]
    return weight.sort().values, fitness.sort().values


def normalize(images_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N x) C x H x W images -> float32 ``(x / 255 - mean) / std`` per channel, on the same device."""
    channels = images_uint8.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(f"mean {tuple(mean)} and std {tuple(std)} need one value per channel ({channels})")
    m = torch.tensor(mean, dtype=torch.float32, device=images_uint8.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images_uint8.device).view(-1, 1, 1)
    return images_uint8.to(torch.float32).div_(255).sub_(m).div_(s)


def crop_padding_for(shape: Sequence[int]) -> int:
    """Standard random-crop padding for a (C, H, W) or (H, W) shape: 2 * (side // 16), e.g. 32 -> 4, 28 -> 2."""
    return 2 * (min(shape[-2:]) // 16)


def augment(
    images_uint8: torch.Tensor,
    generator: torch.Generator,
    *,
    crop_padding: int,
    flip: bool,
    cutout: int = 0,
) -> torch.Tensor:
    """Randomly augment a uint8 N x C x H x W batch, each sample on its own; returns a new uint8 tensor.

    - crop: pad `crop_padding` zero (black) pixels on every side, then cut an H x W window at a random offset;
    - flip: mirror left-right with probability 0.5;
    - cutout: set a `cutout` x `cutout` square around a random centre to 0 (black; clipped at the border).

    Random numbers come from `generator`, a CPU generator, so results do not depend on the images' device.
    All samples are done at once by indexing, without a Python loop.
    """
    if crop_padding < 0 or cutout < 0:
        raise ConfigError(f"crop_padding {crop_padding} and cutout {cutout} must be >= 0")
    n, channels, height, width = images_uint8.shape
    device = images_uint8.device

    def randint(high: int) -> torch.Tensor:
        return torch.randint(high, (n,), generator=generator).to(device)

    rows = torch.arange(height, device=device).expand(n, height)  # source row of each output row, per sample
    cols = torch.arange(width, device=device).expand(n, width)
    source = images_uint8
    if crop_padding > 0:
        p = crop_padding
        source = F.pad(images_uint8, (p, p, p, p))
        rows = rows + randint(2 * p + 1)[:, None]
        cols = cols + randint(2 * p + 1)[:, None]
    if flip:
        flipped = (torch.rand(n, generator=generator) < 0.5).to(device)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    out = source[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if cutout > 0:
        top = randint(height)[:, None] - cutout // 2
        left = randint(width)[:, None] - cutout // 2
        ys = torch.arange(height, device=device)[None, :]
        xs = torch.arange(width, device=device)[None, :]
        in_rows = (ys >= top) & (ys < top + cutout)  # n x H
        in_cols = (xs >= left) & (xs < left + cutout)  # n x W
        out = out.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0)
    return out


class BatchStream:
    """Endless shuffled mini-batches over a subset held in memory, epoch after epoch, with augmentation.

    Each epoch visits the samples in a fresh random order; with `drop_last` the last incomplete batch of an
    epoch is skipped. `state_dict` / `load_state_dict` save and restore the exact position, so a resumed
    stream yields the same batches the original would have.
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        seed: int,
        crop_padding: int = 0,
        flip: bool = False,
        cutout: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        drop_last: bool = True,
    ) -> None:
        size = len(images_uint8)
        if len(labels) != size:
            raise ConfigError(f"{size} images but {len(labels)} labels")
        check_positive_int("batch_size", batch_size)
        if size == 0 or (drop_last and batch_size > size):
            raise ConfigError(f"batch_size {batch_size} is larger than the {size} samples (at most {size})")
        if crop_padding < 0 or cutout < 0:
            raise ConfigError(f"crop_padding {crop_padding} and cutout {cutout} must be >= 0")
        self.device = torch.device(device)
        self.images = images_uint8.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.steps_per_epoch = size // batch_size if drop_last else math.ceil(size / batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.perm = torch.randperm(size, generator=self.generator)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (normalized float32 images, int64 labels) batch, both on the stream's device."""
        size = len(self.images)
        needed = self.batch_size if self.drop_last else 1
        if self.position + needed > size:  # epoch finished: reshuffle
            self.epoch += 1
            self.position = 0
            self.perm = torch.randperm(size, generator=self.generator)
        index = self.perm[self.position : self.position + self.batch_size]
        self.position += len(index)
        index = index.to(self.device)
        images = self.images[index]
        if self.crop_padding or self.flip or self.cutout:
            images = augment(images, self.generator, crop_padding=self.crop_padding, flip=self.flip, cutout=self.cutout)
        x = normalize(images, self.mean, self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def state_dict(self) -> dict:
        """Position in the stream, made only of tensors and ints so ``torch.load(weights_only=True)`` reads it."""
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm.clone(),
            "position": self.position,
            "epoch": self.epoch,
            "size": len(self.images),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict`; raises CheckpointError if it was saved for another subset size/batch."""
        if state["size"] != len(self.images) or state["batch_size"] != self.batch_size:
            raise CheckpointError(
                f"batch stream state is for {state['size']} samples in batches of {state['batch_size']}; "
                f"this stream has {len(self.images)} samples in batches of {self.batch_size}"
            )
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])


def eval_batches(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalized images, labels) batches in order, without augmentation; the last one may be smaller."""
    check_positive_int("batch_size", batch_size)
    for start in range(0, len(images_uint8), batch_size):
        x = normalize(images_uint8[start : start + batch_size].to(device), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[start : start + batch_size].to(device, torch.int64)
