"""The training set as a search uses it: the weight part as a shuffled stream, BatchNorm calibration batches and
the fitness part in evaluation batches (`search_batches`)."""

from __future__ import annotations

import torch

from nasviz.data.batches import Batch, BatchStream, crop_padding_for, eval_batches, split_indices
from nasviz.data.loading import ImageData
from nasviz.search.config import SearchConfig


def search_batches(data: ImageData, config: SearchConfig, device: torch.device) -> tuple[BatchStream, list[Batch],
                                                                                          list[Batch]]:
    """The training set as a search uses it: a shuffled (and, with `config.augment`, augmented) stream over the
    weight part; the weight part's first `bn_batches` batches, to recalibrate BatchNorm before each evaluation;
    and the fitness part in evaluation batches. All channels_last, on `device`."""
    c = config
    weight, fitness = split_indices(len(data.train_labels), c.weight_images, c.fitness_images, c.seed)
    stream = BatchStream(data.train_images[weight], data.train_labels[weight], c.batch_size, data.mean, data.std,
                         seed=c.seed, crop_padding=crop_padding_for(data.shape) if c.augment else 0,
                         flip=data.flip and c.augment, device=device, channels_last=True)

    def batches(index: torch.Tensor, size: int) -> list[Batch]:
        return list(eval_batches(data.train_images[index], data.train_labels[index], size, data.mean, data.std,
                                 device, channels_last=True))

    return stream, batches(weight[: c.bn_batches * c.batch_size], c.batch_size), batches(fitness, c.eval_batch_size)
