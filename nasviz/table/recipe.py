"""The one fixed recipe by which the ground-truth table trains every genotype of a space from scratch.

The network is the genotype's search-width network (`SearchNetwork`: the modules, channels and cells that the
supernet's path of that genotype runs), so the table rates exactly the networks a `mini` search ranks. It is
trained with SGD and a cosine learning rate stepped every batch down to 0, on a fixed subset of the training
set, and tested on the whole test set. Everything random comes from the seed, so a (genotype, seed) pair
always gives the same record on the same machine and thread count.
"""

from __future__ import annotations

import time

import torch

from nasviz.data.loading import BatchStream, ImageData, crop_padding_for, eval_batches, resized
from nasviz.space.genotypes import Genotype
from nasviz.space.network import SearchNetwork, count_flops, count_params
from nasviz.table.recipe_config import Recipe
from nasviz.train import schedule
from nasviz.train.steps import accuracy, prepare_model, train_step

__all__ = ["DATA_SEED", "Recipe", "prepare_data", "train_and_test", "train_subset"]

DATA_SEED = 0
"""Seed of the shuffle that picks the training subset: the same images for every genotype and seed."""


def prepare_data(data: ImageData, recipe: Recipe) -> ImageData:
    """The dataset at the recipe's image size."""
    return resized(data, recipe.image_size)


def train_subset(data: ImageData, recipe: Recipe) -> torch.Tensor:
    """Indices of the training images the recipe trains on (a seeded shuffle's first `train_images`)."""
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(DATA_SEED))
    return order[: recipe.train_images]


def train_and_test(genotype: Genotype, seed: int, recipe: Recipe, data: ImageData) -> dict:
    """Train `genotype` from scratch with `recipe` and `seed` on `data` (already at the recipe's image size);
    returns test accuracy on the whole test set, final training loss (mean of the last tenth of the steps),
    params, FLOPs, and wall and CPU seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    index = train_subset(data, recipe)
    stream = BatchStream(
        data.train_images[index], data.train_labels[index], recipe.batch_size, data.mean, data.std,
        seed=seed, crop_padding=crop_padding_for(data.shape), flip=data.flip, channels_last=True,
    )
    torch.manual_seed(seed)
    net = SearchNetwork(genotype, data.shape[0], data.num_classes, recipe.channels, recipe.layers)
    params, flops = count_params(net), count_flops(net, data.shape)
    net = prepare_model(net, torch.device("cpu"))
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    weights = list(net.parameters())
    total = recipe.steps
    net.train()
    tail_losses: list[float] = []
    tail = max(1, total // 10)
    for step in range(total):
        result = train_step(net, stream.next(), optimizer, weights, lr=schedule.cosine(recipe.lr, step, total),
                            grad_clip=recipe.grad_clip, step=step, phase="table training")
        if step >= total - tail:
            tail_losses.append(result.loss)
    n_test = len(data.test_labels) if recipe.test_images is None else recipe.test_images
    test = eval_batches(data.test_images[:n_test], data.test_labels[:n_test], 500, data.mean, data.std,
                        channels_last=True)
    return {
        "test_accuracy": accuracy(net, None, test),
        "train_loss": sum(tail_losses) / len(tail_losses),
        "params": params,
        "flops": flops,
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu_start, 3),
    }
