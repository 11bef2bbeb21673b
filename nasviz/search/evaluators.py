"""Evaluators: the one seam through which a search gets the fitness of its candidates.

A search asks its evaluator to `score` a genotype (higher is better), for the `sizes` of genotypes (parameters and
FLOPs of the search-width network) and for the smallest network (to check size limits); an evaluator that
`trains` a weight-sharing supernet also trains it (`train`) on the paths the search samples. Each keeps its own
state for checkpoints (`state_dict` / `load_state_dict`, checked by `check_state`). The search never asks which
source it has.

Adding a fitness source: subclass `Evaluator` here (set `trains`, `shardable`, `uses_truth` as they apply;
implement `score`, and `state_dict`/`load_state_dict`/`check_state` if it has state), then add one line for it to
`nasviz.search.fitness_sources.SOURCES`. `SearchConfig.fitness` accepts the new name from then on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from nasviz.data.datasets import BUILTIN
from nasviz.data.loading import ImageData, load_dataset, resized
from nasviz.search.budget import Size, Sizes, measure_search_network, smallest, smallest_of
from nasviz.search.data_split import search_batches
from nasviz.search.fitness_sources import SOURCES
from nasviz.space.genotypes import Genotype, SearchSpace
from nasviz.space.supernet import Supernet
from nasviz.train import memory
from nasviz.train import precision as precisions
from nasviz.train.steps import PathSampler, fitness, pick_device, prepare_model, train_steps

if TYPE_CHECKING:
    from nasviz.search.config import SearchConfig
    from nasviz.table import Table
    from nasviz.train.distributed import Ranks

Check = tuple[str, bool]
"""A checkpoint field's name and whether it is whole."""


class Evaluator:
    """Scores candidates for one search (`config`, in `space`, judged by `truth` where there is a table, on
    `ranks`). `config` may come back `fitted` (e.g. to the size of a dataset loaded here)."""

    trains = False
    """Whether it trains a weight-sharing supernet (warm-up, fine-tuning)."""
    shardable = False
    """Whether several processes split its scoring (each scores a share; all receive every value)."""
    uses_truth = False
    """Whether its scores come from the ground-truth table (result.json says so beside the truth)."""

    def __init__(self, config: SearchConfig, space: SearchSpace, truth: Table | None, ranks: Ranks) -> None:
        self.config, self.space, self.truth, self.ranks = config, space, truth, ranks
        self.device = torch.device("cpu")
        self.precision: str | None = None
        """The arithmetic scores are computed in ('fp32', 'bf16'; None: no arithmetic, a lookup)."""
        self.sizes = Sizes(self._measure, space.key)
        """Parameters and FLOPs of each genotype's search-width network, counted once per genotype."""

    def _measure(self, genotype: Genotype) -> Size:
        c = self.config
        return measure_search_network(genotype, self.input_shape, self.num_classes, c.channels, c.layers)

    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes = 10

    def score(self, genotype: Genotype) -> float:
        """The fitness of `genotype` now (higher is better)."""
        raise NotImplementedError

    def dataset(self) -> ImageData:
        """The search's images (at `image_size`), loaded at the first call where this evaluator needs none itself;
        checked against the memory available before they are resized (`check_memory`)."""
        if getattr(self, "data", None) is None:
            c = self.config
            data = load_dataset(c.dataset, c.data_root)
            self.check_memory(data.shape, data.num_classes, len(data.train_labels) + len(data.test_labels))
            self.data = resized(data, c.image_size) if c.image_size is not None else data
        return self.data

    def network_batches(self) -> dict[str, int]:
        """The batch settings with which this evaluator trains or scores search-width networks one at a time
        (outside a supernet), and their sizes: the final pick's retraining (`final_pick=retrain`)."""
        c = self.config
        return {"batch_size": c.batch_size} if c.final_pick == "retrain" else {}

    def check_memory(self, shape: tuple[int, int, int], num_classes: int, images: int) -> None:
        """ConfigError (one line naming the setting and the memory available) where the data (`images` of
        `shape`, at `image_size`) and the networks of `network_batches` cannot fit (`nasviz.train.memory`)."""
        c = self.config
        memory.check_scoring(c, shape, num_classes, images, c.image_size or shape[1], self.network_batches())

    def smallest(self) -> tuple[Size, str]:
        """The least parameters and FLOPs a network of this search can have, and which networks those are."""
        c, name = self.config, self.space.name
        return smallest(self.space, self.sizes), f"{name} network at channels={c.channels}, layers={c.layers}"

    def state_dict(self) -> dict[str, Any]:
        """This evaluator's part of a checkpoint (top-level fields)."""
        return {}

    def random_states(self) -> dict[str, Any]:
        """Its random generators' states (they go under the checkpoint's "rng")."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint holding `state_dict()` and `random_states()` (under "rng")."""

    @classmethod
    def check_state(cls, state: dict[str, Any], config: dict[str, Any]) -> list[Check]:
        """Which of this evaluator's checkpoint fields are whole (before anything is loaded)."""
        return []


class SupernetEvaluator(Evaluator):
    """The method's fitness: accuracy on the fitness images with weights inherited from the supernet, BatchNorm
    recalibrated first. Owns the data (weight part as a batch stream; calibration and fitness batches), the
    supernet and its optimizer."""

    trains = shardable = True

    def __init__(self, config: SearchConfig, space: SearchSpace, truth: Table | None, ranks: Ranks) -> None:
        super().__init__(config, space, truth, ranks)
        c = config
        self.device = ranks.device(pick_device(c.device), c.device)
        self.precision = precisions.resolve(c.eval_precision, self.device)
        self.data = d = load_dataset(c.dataset, c.data_root)
        self.config = c = c.fitted(len(d.train_labels), d.name)  # an image folder's size is known now
        ranks.check_batch(c.batch_size)
        memory.check_search(c, d.shape, d.num_classes, len(d.train_labels) + len(d.test_labels),
                            c.image_size or d.shape[1], device=self.device)  # before resizing, or the supernet
        if c.image_size is not None:
            self.data = d = resized(d, c.image_size)
        self.input_shape, self.num_classes = d.shape, d.num_classes
        self.stream, self.calibration, self.fitness_batches = search_batches(d, c, self.device)
        torch.manual_seed(c.seed)
        self.supernet = prepare_model(Supernet(d.shape[0], d.num_classes, c.channels, c.layers, space), self.device)
        self.optimizer = torch.optim.SGD(self.supernet.parameters(), lr=c.lr, momentum=c.momentum,
                                         weight_decay=c.weight_decay)

    def score(self, genotype: Genotype) -> float:
        return fitness(self.supernet, genotype, self.calibration, self.fitness_batches, self.precision)

    def train(self, sampler: PathSampler, steps: int, *, phase: str, first_step: int, lr: float,
              rates: list[float] | None, on_step: Callable[[dict], None],
              stop: Callable[[], bool] | None = None) -> int:
        """`steps` supernet steps on paths from `sampler` (with several processes, each trains on its slice of
        every global batch and the gradients are averaged); fewer where `stop()` turns True after one. Returns
        how many ran."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        several = self.ranks.size > 1
        next_batch = (lambda: self.ranks.slice(self.stream.next())) if several else self.stream.next
        return len(train_steps(self.supernet, next_batch, self.optimizer, sampler, steps, phase=phase,
                               first_step=first_step, grad_clip=self.config.grad_clip, on_step=on_step, rates=rates,
                               ranks=self.ranks if several else None, stop=stop))

    def state_dict(self) -> dict[str, Any]:
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "stream": self.stream.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.supernet.load_state_dict(state["supernet"])
        self.optimizer.load_state_dict(state["optimizer"])
        _check_optimizer(self.optimizer)
        self.stream.load_state_dict(state["stream"])
        for group in self.optimizer.param_groups:  # the saved groups hold the old values: an override must count
            group.update(momentum=self.config.momentum, weight_decay=self.config.weight_decay)

    @classmethod
    def check_state(cls, state: dict[str, Any], config: dict[str, Any]) -> list[Check]:
        stream = state.get("stream")
        return [
            ("supernet", isinstance(state.get("supernet"), dict)
             and all(isinstance(v, torch.Tensor) for v in state["supernet"].values())),
            ("optimizer", isinstance(state.get("optimizer"), dict) and isinstance(state["optimizer"].get("state"), dict)
             and isinstance(state["optimizer"].get("param_groups"), list)),
            ("stream", isinstance(stream, dict) and isinstance(stream.get("generator"), torch.Tensor)
             and all(isinstance(stream.get(k), int) and not isinstance(stream[k], bool) and stream[k] >= 0
                     for k in ("position", "epoch", "size", "batch_size"))
             and isinstance(stream.get("perm"), torch.Tensor) and stream["perm"].dtype == torch.int64
             and stream["perm"].shape == (stream["size"],) and stream["position"] <= stream["size"]
             and torch.equal(stream["perm"].sort().values, torch.arange(stream["size"]))),
        ]


class TableEvaluator(Evaluator):
    """Fitness looked up in the ground-truth table (plus seeded Gaussian noise of `table_noise`): no data, no
    supernet, no training; sizes are the table's."""

    uses_truth = True

    def __init__(self, config: SearchConfig, space: SearchSpace, truth: Table | None, ranks: Ranks) -> None:
        super().__init__(config, space, truth, ranks)
        assert truth is not None  # SearchConfig.validate refuses fitness=table without a table
        self.sizes = Sizes(lambda g: Size(truth.entry(g).params, truth.entry(g).flops), space.key)
        self.rng_noise = random.Random(config.seed + 2_000_003)
        facts = BUILTIN.get(config.dataset)
        if self.network_batches() and facts is not None:  # the final pick's data and networks, checked now
            self.check_memory(facts.shape, facts.classes, facts.train_images + facts.test_images)

    def score(self, genotype: Genotype) -> float:
        return self.truth.noisy_accuracy(genotype, self.config.table_noise, self.rng_noise)

    def smallest(self) -> tuple[Size, str]:
        return smallest_of(Size(e.params, e.flops) for e in self.truth), f"network of the table {self.truth.name!r}"

    def random_states(self) -> dict[str, Any]:
        return {"noise": self.rng_noise.getstate()} if self.config.table_noise else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.config.table_noise:
            self.rng_noise.setstate(random_state(state["rng"]["noise"]))


class ProxyEvaluator(Evaluator):
    """A zero-cost proxy (synflow, naswot, snip, grad_norm, jacob_cov: `nasviz.search.proxies`) or a size (params,
    flops) as fitness: the genotype's search-width network scored at initialisation (from the search's seed), on
    `proxy_batch_size` training images drawn by the seed; no supernet, no training. A network's score never
    changes, so each is computed once (re-evaluating a parent re-reads it)."""

    def __init__(self, config: SearchConfig, space: SearchSpace, truth: Table | None, ranks: Ranks) -> None:
        from nasviz.search import proxies

        super().__init__(config, space, truth, ranks)
        self.precision = "fp32"
        data = self.dataset()
        self.config = c = config.fitted(len(data.train_labels), data.name)
        self.input_shape, self.num_classes = data.shape, data.num_classes
        self.proxy = proxies.PROXIES[c.fitness]
        self._score = proxies.score
        self.images, self.labels = (proxies.proxy_batch(data, c.proxy_batch_size, c.seed) if self.proxy.needs_images
                                    else (None, None))
        self.scores: dict[str, float] = {}

    def network_batches(self) -> dict[str, int]:
        """The proxy's batch (where it needs images: its backward or forward pass runs on `proxy_batch_size`
        images) besides the final pick's."""
        from nasviz.search import proxies

        c = self.config
        own = {"proxy_batch_size": c.proxy_batch_size} if proxies.PROXIES[c.fitness].needs_images else {}
        return {**own, **super().network_batches()}

    def score(self, genotype: Genotype) -> float:
        if self.proxy.name in ("params", "flops"):
            return float(getattr(self.sizes(genotype), self.proxy.name))
        key, c = self.space.key(genotype), self.config
        if key not in self.scores:
            self.scores[key] = self._score(self.proxy.name, genotype, data_shape=self.input_shape,
                                           num_classes=self.num_classes, channels=c.channels, layers=c.layers,
                                           images=self.images, labels=self.labels, seed=c.seed)
        return self.scores[key]


def evaluator_class(name: str) -> type[Evaluator]:
    """The evaluator class of the fitness source `name` (see `nasviz.search.fitness_sources.SOURCES`)."""
    return globals()[SOURCES[name].evaluator]


def make_evaluator(config: SearchConfig, space: SearchSpace, truth: Table | None, ranks: Ranks) -> Evaluator:
    """The evaluator `config.fitness` names, set up (data loaded, supernet built where it has one)."""
    return evaluator_class(config.fitness)(config, space, truth, ranks)


def score_all(evaluator: Evaluator, ranks: Ranks, genotypes: Sequence[Genotype]) -> Iterator[float]:
    """The scores of `genotypes`, in order. With one process each is scored as it is asked for (the search records
    it before the next is scored). With several each scores its share and every process receives every value; an
    evaluator that is not `shardable` (e.g. a table lookup) scores all on every process: it is cheap, and its noise
    is drawn in order."""
    if ranks.size == 1 or not evaluator.shardable:
        yield from (evaluator.score(g) for g in genotypes)
    else:
        yield from ranks.gather([evaluator.score(g) for g in ranks.shard(genotypes)], len(genotypes))


def random_state(state) -> tuple:
    """A `random.Random` state as `setstate` wants it (a checkpoint holds its tuples as lists)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def _check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """ValueError where a loaded SGD state does not fit its weights (torch checks only the number of them): a
    momentum buffer of another shape, a hyper-parameter of the wrong type."""
    for group in optimizer.param_groups:
        for name in ("lr", "momentum", "dampening", "weight_decay"):
            value = group.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"optimizer {name}={value!r} is not a number")
        for p in group["params"]:
            buffer = optimizer.state.get(p, {}).get("momentum_buffer")
            if buffer is not None and (not isinstance(buffer, torch.Tensor) or buffer.shape != p.shape):
                raise ValueError(f"an optimizer momentum of shape {tuple(getattr(buffer, 'shape', ()))} for a weight "
                                 f"of shape {tuple(p.shape)}")
