"""The final pick by short retraining: train the search's top candidates briefly from scratch and return the best.

Weight-sharing fitness orders near-equal networks poorly (docs/benchmarks.md: the searches evaluate a network
near the space's best, then return one well below it). The common remedy is to train a handful of the
one-shot ranking's best candidates from scratch for a short budget and keep the best of those (as the SPOS and
once-for-all papers evaluate their final candidates; here shortened to minutes on a CPU).

With `final_pick="retrain"`, after the last generation the `final_top_k` distinct genotypes of everything the
search evaluated, ranked by the last fitness each received, are each trained `final_seeds` times: their
search-width network (the one the supernet's path runs, the one a ground-truth table rates), `final_steps` SGD
steps with a cosine rate falling to 0 per batch, on the supernet's weight images. Each is scored on
`final_images` held-out training images (neither weight nor fitness images; never the test set). The best mean
score wins (ties: the better fitness).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from nasviz.data.batches import BatchStream, crop_padding_for, eval_batches, split_indices
from nasviz.space.genotypes import Genotype
from nasviz.space.network import SearchNetwork
from nasviz.train import schedule
from nasviz.train.steps import accuracy, prepare_model, train_step

if TYPE_CHECKING:
    from nasviz.data.loading import ImageData
    from nasviz.search.config import SearchConfig

SEED_OFFSET = 3_000_003
"""Retraining seed s of a search with seed S uses S + SEED_OFFSET + s (apart from the search's other streams)."""


@dataclass
class Candidate:
    """A genotype retrained in the final pick: its last fitness in the search and its retrain scores so far."""

    genotype: str
    fitness: float
    scores: list[float] = field(default_factory=list)
    cpu_s: float = 0.0

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None

    def to_json(self) -> dict[str, Any]:
        return {"genotype": self.genotype, "fitness": self.fitness, "retrain_scores": self.scores,
                "retrain_mean": self.mean, "cpu_s": round(self.cpu_s, 3)}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Candidate:
        return cls(row["genotype"], row["fitness"], list(row["retrain_scores"]), row.get("cpu_s", 0.0))


def candidates(latest: dict[str, tuple[str, float]], k: int) -> list[Candidate]:
    """The `k` genotypes of best last fitness (`latest`: genotype key -> (text, last fitness)), best first; equal
    fitness in key order."""
    ranked = sorted(latest.items(), key=lambda item: (-item[1][1], item[0]))
    return [Candidate(text, value) for _key, (text, value) in ranked[:k]]


def picked(pool: list[Candidate]) -> Candidate:
    """The winner: the best mean retrain score; ties go to the better fitness, then the earlier candidate."""
    return max(pool, key=lambda c: (c.mean if c.mean is not None else -1.0, c.fitness))


def held_out(n_train: int, config: SearchConfig) -> torch.Tensor:
    """`final_images` training images that neither train the supernet nor measure fitness, chosen by the seed."""
    weight, fitness = split_indices(n_train, config.weight_images, config.fitness_images, config.seed)
    free = torch.ones(n_train, dtype=torch.bool)
    free[weight] = False
    free[fitness] = False
    rest = free.nonzero().flatten()
    order = torch.randperm(len(rest), generator=torch.Generator().manual_seed(config.seed + SEED_OFFSET))
    return rest[order[: config.final_images]].sort().values


def retrain_score(genotype: Genotype, seed: int, data: ImageData, config: SearchConfig) -> float:
    """Train `genotype`'s search-width network from scratch (`final_steps` steps, seed `seed`) on the weight
    images and return its accuracy on the held-out images (see the module docstring)."""
    c = config
    weight, _ = split_indices(len(data.train_labels), c.weight_images, c.fitness_images, c.seed)
    run_seed = c.seed + SEED_OFFSET + seed
    stream = BatchStream(data.train_images[weight], data.train_labels[weight], c.batch_size, data.mean, data.std,
                         seed=run_seed, crop_padding=crop_padding_for(data.shape) if c.augment else 0,
                         flip=data.flip and c.augment, channels_last=True)
    torch.manual_seed(run_seed)
    net = prepare_model(SearchNetwork(genotype, data.shape[0], data.num_classes, c.channels, c.layers),
                        torch.device("cpu"))
    optimizer = torch.optim.SGD(net.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    params = list(net.parameters())
    net.train()
    for step in range(c.final_steps):
        lr = schedule.cosine(c.lr, step, c.final_steps)
        train_step(net, stream.next(), optimizer, params, lr=lr, grad_clip=c.grad_clip, step=step,
                   phase="final pick training")
    index = held_out(len(data.train_labels), c)
    batches = eval_batches(data.train_images[index], data.train_labels[index], c.eval_batch_size, data.mean,
                           data.std, channels_last=True)
    return accuracy(net, None, batches)


def retrain(candidate: Candidate, data: ImageData, config: SearchConfig, space) -> Candidate:
    """`candidate` with its remaining seeds trained and scored (its CPU seconds added)."""
    start = time.process_time()
    genotype = space.parse(candidate.genotype)
    for seed in range(len(candidate.scores), config.final_seeds):
        candidate.scores.append(retrain_score(genotype, seed, data, config))
    candidate.cpu_s += time.process_time() - start
    return candidate


def pending(pool: list[Candidate] | None, config: SearchConfig) -> bool:
    """Whether the final pick has retraining left: final_pick=retrain, and no candidates chosen yet (`pool` None)
    or one of them short of its `final_seeds` scores."""
    return config.final_pick == "retrain" and (pool is None or any(len(x.scores) < config.final_seeds for x in pool))


def retrain_next(pool: list[Candidate], data: ImageData, config: SearchConfig, space) -> tuple[Candidate, int]:
    """Retrain the next candidate of `pool` short of its seeds (`retrain`); returns it and its number (1-based)."""
    todo = [x for x in pool if len(x.scores) < config.final_seeds]
    return retrain(todo[0], data, config, space), len(pool) - len(todo) + 1
