"""`SearchConfig`: every knob of a search, its presets, and validation before any work starts."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from nasviz import settings
from nasviz.data.datasets import BUILTIN, check_dataset_name
from nasviz.errors import CheckpointError, ConfigError, suggest
from nasviz.search.fitness_sources import SOURCES
from nasviz.settings import (
    BATCH,
    CHANNELS,
    DEVICE,
    EVAL_BATCH,
    GRAD_CLIP,
    LAYERS,
    LR,
    MAX_STEPS,
    SEED,
    STEPS,
    WEIGHT_DECAY,
    setting,
)
from nasviz.space.genotypes import SPACES, get_space

METHODS = ("sft-ga", "ga", "random")
FITNESS = tuple(SOURCES)
"""Fitness sources by name (`nasviz.search.fitness_sources`; `nasviz.search.evaluators` scores with them)."""
SPACE_LAYOUT: dict[str, dict[str, Any]] = {"mini": {"image_size": 14, "layers": 3}}
"""What choosing a space also sets, unless given: mini searches at its ground-truth table's layout."""
PATH_SAMPLING = ("population", "region", "uniform")
OBJECTIVES = ("fitness", "pareto")
PARETO_SIZES = ("params", "latency")
TIE_BREAKS = ("random", "params")
EVAL_PRECISIONS = ("fp32", "bf16", "auto")
LR_SCHEDULES = ("constant", "cosine-per-phase")
FINAL_PICKS = ("fitness", "retrain")
INTRODUCED: dict[str, Any] = {"tie_break": "params"}
"""Settings added after runs were first recorded, with the value a run that does not record them used (a saved
config without them is read with these, so an old run resumes exactly as it began)."""
RESUMABLE_CHANGES = ("generations", "device", "data_root", "checkpoint_every")
"""Settings that may differ when resuming without `force` (extend a run, move it, checkpoint more often)."""
MAX_POPULATION = 10_000
"""Largest population accepted (the paper uses 50)."""
MAX_GENERATIONS = 1_000_000
"""Most generations accepted (the paper runs 20)."""

PRESETS: dict[str, dict[str, Any]] = {
    # a whole search in well under a minute on a 2-core CPU: for tests and CI
    "smoke": dict(channels=4, layers=3, batch_size=32, weight_images=2000, fitness_images=200, bn_batches=1,
                  eval_batch_size=200, warmup_steps=20, population=4, generations=2, finetune_steps=6, top_k=3,
                  checkpoint_every=10),
    # a live class: the quick preset's network at about half its budget, a whole search in ~2 minutes on a 2-core
    # CPU; warm-up checkpoints every 50 steps (a Stop in the warm-up takes effect after the current step)
    "class": dict(warmup_steps=200, population=8, generations=4, finetune_steps=24, fitness_images=500,
                  checkpoint_every=50),
    # the default demo: a whole search in <= 5 minutes on a 2-core CPU
    "quick": dict(),
    # the paper's scale, CIFAR-10 on a GPU: 8-cell, 16-channel supernet
    "paper": dict(dataset="cifar10", channels=16, layers=8, batch_size=96, lr=0.05, weight_images=25000,
                  fitness_images=5000, bn_batches=4, eval_batch_size=500, warmup_steps=26000, population=50,
                  generations=20, finetune_steps=520, top_k=10, checkpoint_every=1000),
}
"""Budgets by name; a preset is the defaults below with these values replaced."""


def _dataset(name: str, value: str) -> None:
    check_dataset_name(value)


@dataclass
class SearchConfig:
    """A search's settings. Start from a preset (`SearchConfig.from_preset('quick', seed=1)`) and override freely."""

    # --- what and how
    dataset: str = setting("fashion-mnist", check=_dataset)
    """fashion-mnist, mnist, cifar10, cifar100, svhn, or imagefolder:PATH (a folder of your own images)."""
    data_root: str | None = setting(None, check=settings.check_folder_or_none)
    """Folder holding (or receiving) the dataset files; None: $NASVIZ_DATA or ~/.cache/nasviz/data."""
    preset: str = setting("quick", choices=(*PRESETS, "custom"))
    """The preset these settings started from (smoke, class, quick, paper), or custom."""
    method: str = setting("sft-ga", choices=METHODS)
    """sft-ga (the paper's method), ga (GA without fine-tuning) or random (random search with weight sharing)."""
    seed: int = setting(0, **SEED)
    """Seeds every random choice: the data split, the weights, the GA, the path sampling."""
    device: str = setting("auto", **DEVICE)
    """auto (CUDA when present, else the CPU), cpu, cuda or cuda:N."""
    space: str = setting("darts", choices=tuple(SPACES))
    """The search space: darts (the DARTS cell space) or mini (2 nodes, 4 operations, reduction cell = normal cell:
    648 networks, every one trained from scratch in a ground-truth table, see `nasviz.table`). Choosing mini also
    sets image_size=14 and layers=3 (the table's layout) unless they are given."""
    image_size: int | None = setting(None, low=4, high=1024)
    """Scale every image to image_size x image_size (area averaging) before searching; None: as they are."""
    fitness: str = setting("supernet", choices=SOURCES.keys())  # live: a source added to the registry counts
    """How a candidate is scored: supernet (accuracy with inherited weights: the method); table (its accuracy in
    the ground-truth table: no training at all, thousands of searches a minute; a space with a table only); a
    zero-cost proxy of its network at initialisation, no supernet and no training (synflow, naswot, snip,
    grad_norm, jacob_cov: `nasviz.search.proxies`); or its size, more is better (params, flops): free yardsticks."""
    table_noise: float = setting(0.0, low=0, high=1)
    """With fitness=table: standard deviation of seeded Gaussian noise added to every lookup (accuracy units)."""
    table: str | None = None
    """The ground-truth table (a name or a table file); None: the table shipped for the space and dataset, if any.
    Where there is one, every individual's table accuracy and percentile go into history.jsonl and result.json
    under "truth" (the search never uses them unless fitness=table)."""
    # --- the supernet and its training
    channels: int = setting(8, **CHANNELS)
    """Initial channels of the supernet (DARTS searches with 16)."""
    layers: int = setting(5, **LAYERS)
    """Cells of the supernet; reduction cells stand at 1/3 and 2/3 of the depth (DARTS searches with 8)."""
    batch_size: int = setting(64, **BATCH)
    """Images per supernet training step."""
    lr: float = setting(0.05, **LR)
    """Learning rate of the warm-up (SGD) and, unless `finetune_lr` is set, of the fine-tuning."""
    finetune_lr: float | None = setting(None, **LR)
    """Learning rate of the fine-tuning; None: `lr`."""
    momentum: float = setting(0.9, low=0, below=1)
    """SGD momentum."""
    weight_decay: float = setting(3e-4, **WEIGHT_DECAY)
    """SGD weight decay."""
    lr_schedule: str = setting("constant", choices=LR_SCHEDULES)
    """Learning rate within each training phase (the warm-up; each generation's fine-tuning): constant, or
    cosine-per-phase (cosine-annealed from the phase's rate to 0 over the phase's steps, so the paths trained last
    in a phase are not favoured by a large last update)."""
    grad_clip: float = setting(5.0, **GRAD_CLIP)
    """Largest gradient norm of a training step (clipped above)."""
    augment: bool = True
    """Random crops and, where images keep their meaning mirrored, flips of the training batches."""
    # --- the data split (training set only: a weight part and a fitness part)
    weight_images: int | None = setting(20000, low="batch_size")
    """Training images that train the supernet's weights; None: all that the fitness part leaves."""
    fitness_images: int = setting(800, low=1)
    """Training images that measure fitness (validation accuracy with inherited weights)."""
    bn_batches: int = setting(2, low=1, high=1000)
    """Batches of the weight part that recalibrate BatchNorm statistics before each evaluation."""
    eval_batch_size: int = setting(250, **EVAL_BATCH)
    """Images per batch when measuring fitness."""
    eval_precision: str = setting("fp32", choices=EVAL_PRECISIONS)
    """Arithmetic of fitness evaluation (BatchNorm recalibration and accuracy) on the CPU: fp32; bf16 (bfloat16
    autocast, where the CPU has bf16 instructions, AVX512-BF16 or AMX; elsewhere fp32, with a warning); auto
    (bf16 where the CPU has them, else fp32). On CUDA evaluation always runs in bfloat16 autocast, as training does.
    result.json records the precision used."""
    # --- budgets
    warmup_steps: int = setting(400, **STEPS)
    """Supernet training steps before the initial population, each on one uniformly sampled path (SPOS)."""
    population: int = setting(10, low=2, high=MAX_POPULATION)
    """N: the population size, and the number of offspring per generation."""
    generations: int = setting(6, low=0, high=MAX_GENERATIONS)
    """G: generations after the initial population."""
    finetune_steps: int = setting(40, low=1, high=MAX_STEPS)
    """F: supernet training steps per generation on paths of the search region (sft-ga only)."""
    equal_compute: bool = False
    """A search that does not fine-tune (ga, random, sft-ga with finetune off) warms up generations x finetune_steps
    steps longer, so it trains the supernet as many steps as sft-ga does (an equal-compute control); no effect on
    a search that fine-tunes. The extra steps are fixed when the warm-up ends: extending `generations` later does
    not add more."""
    # --- the genetic algorithm
    p_crossover: float = setting(0.9, low=0, high=1, allowed="a probability in [0, 1]")
    """Probability of node-level uniform crossover for each child."""
    p_mutation: float = setting(0.2, low=0, high=1, allowed="a probability in [0, 1]")
    """Probability of mutating each node of a child (one of its two (input, op) genes)."""
    # --- the method's three switches
    finetune: bool | None = None
    """Fine-tune the supernet every generation; None: the method's default (on for sft-ga, off for baselines)."""
    path_sampling: str = setting("population", choices=PATH_SAMPLING)
    """Paths the fine-tuning trains: population (each member of P ∪ Q equally often), region (each gene drawn
    from P ∪ Q's frequencies) or uniform (plain SPOS, no focusing)."""
    reevaluate_parents: bool = True
    """Re-evaluate the parents with the fine-tuned weights (fair comparison) instead of keeping old fitness."""
    # --- size budget and objective
    max_params: int | None = setting(None, low=1)
    """Largest parameter count of a network the search may evaluate (its search-width network, as history.jsonl
    counts it; with fitness=table, the table's); None: no limit. The initial population, the offspring and random
    search's samples are re-drawn until within; limits that leave too few networks are refused before training."""
    max_flops: int | None = setting(None, low=1)
    """Largest FLOPs per image (torch's FLOP counter, search-width network; with fitness=table, the table's) of a
    network the search may evaluate; None: no limit."""
    max_latency_ms: float | None = setting(None, positive=True, allowed="a positive number of milliseconds")
    """Largest latency (ms per call, as `latency_profile` predicts it for the search-width network on the device it
    was made on) of a network the search may evaluate; None: no limit. Needs `latency_profile`."""
    latency_profile: str | None = None
    """A latency profile of this search's network layout (`python -m nasviz latency profile` makes one for a device):
    each individual's predicted latency goes into history.jsonl (`latency_ms`) and result.json; needed by
    `max_latency_ms` and `pareto_size="latency"`."""
    objective: str = setting("fitness", choices=OBJECTIVES)
    """What survives each generation: fitness (the best N; ties: `tie_break`) or pareto (NSGA-II: whole
    non-dominated fronts on fitness up, parameters down, the last one cut by crowding distance; result.json then
    lists the final population's front)."""
    pareto_size: str = setting("params", choices=PARETO_SIZES)
    """With objective=pareto, the size that NSGA-II minimises beside maximising fitness: params, or latency (the
    latency `latency_profile` predicts)."""
    tie_break: str = setting("random", choices=TIE_BREAKS)
    """How equal fitness values are ordered, in the binary tournaments and in survival: random (a random order
    drawn from the run's seeded GA generator, so no genotype is favoured for its size or for being a parent) or
    params (fewer parameters first, then parents before offspring: the order before this setting existed)."""
    # --- the final pick
    final_pick: str = setting("fitness", choices=FINAL_PICKS)
    """What the search returns: fitness (the best of the last population) or retrain (the `final_top_k` best
    candidates of everything evaluated, each trained briefly from scratch; the best on held-out training images
    wins: `nasviz.search.final_pick`)."""
    final_top_k: int = setting(3, low=1, high=100)  # defaults chosen by a pilot: docs/benchmarks.md, "picks"
    """With final_pick=retrain: how many candidates are retrained."""
    final_steps: int = setting(300, low=1, high=MAX_STEPS)
    """With final_pick=retrain: SGD steps of each retraining (batch_size images each, cosine rate to 0)."""
    final_seeds: int = setting(1, low=1, high=10)
    """With final_pick=retrain: retrainings per candidate (their mean score decides)."""
    final_images: int = setting(10_000, low=1)
    """With final_pick=retrain: held-out training images (neither weight nor fitness images) that score them."""
    proxy_batch_size: int = setting(64, low=2, high=1024)
    """With a zero-cost proxy as fitness (synflow, naswot, snip, grad_norm, jacob_cov): training images per
    score (drawn by the seed)."""
    # --- reporting
    record_before: bool = True
    """Also measure the offspring's fitness before fine-tuning (the 'before' of the before/after figures). These
    are diagnostic evaluations: counted apart from the search's own (`diagnostic_evaluations` in history.jsonl
    and result.json), and they never change what the search selects."""
    top_k: int = setting(5, low=1)
    """Best genotypes listed in result.json (at most `population`)."""
    checkpoint_every: int = setting(100, low=1, high=MAX_STEPS)
    """Warm-up steps between checkpoints (a checkpoint also follows every generation)."""

    @classmethod
    def from_preset(cls, name: str = "quick", **overrides: Any) -> SearchConfig:
        """A preset's config with `overrides` applied one by one, validated."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}{suggest(name, list(PRESETS))}; allowed: {', '.join(PRESETS)}")
        if "preset" in overrides and str(overrides["preset"]).strip() != name:
            raise ConfigError(f"preset={overrides['preset']!r} cannot be set: it records the preset these settings "
                              f"start from ({name!r}); allowed: choose the preset itself", setting="preset")
        layout = SPACE_LAYOUT.get(str(overrides.get("space", "")).strip(), {})
        return cls(**PRESETS[name], preset=name).replace(**{**layout, **overrides})

    def replace(self, **overrides: Any) -> SearchConfig:
        """A copy with `overrides` (values may be strings, as from the CLI or papermill), validated."""
        config = settings.build(self, overrides)
        config.check_relations()
        return config

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchConfig:
        """A saved config (config.json, a checkpoint's); a setting it lacks that is in `INTRODUCED` takes the value
        runs had before it existed, any other its default."""
        return cls().replace(**{**{k: v for k, v in INTRODUCED.items() if k not in values}, **values})

    @classmethod
    def resumed(cls, saved: dict[str, Any], overrides: dict[str, Any] | None, force: bool = False) -> SearchConfig:
        """The config of a resumed run: the `saved` one with `overrides`; a change of a setting that is not in
        `RESUMABLE_CHANGES` is refused unless `force`."""
        config = cls.from_dict({**saved, **(overrides or {})})
        saved = {**cls().to_dict(), **INTRODUCED, **saved}  # a setting newer than the run: as the run had it
        refused = sorted(k for k, v in config.to_dict().items() if v != saved.get(k) and k not in RESUMABLE_CHANGES)
        if refused and not force:
            k = refused[0]
            raise CheckpointError(f"resuming with {k}={getattr(config, k)!r}, but the run used {k}={saved.get(k)!r}; "
                              f"only {', '.join(RESUMABLE_CHANGES)} may change (override explicitly to accept)",
                              setting="force")
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def uses_finetune(self) -> bool:
        """Fine-tuning is on for sft-ga unless switched off; the baselines never fine-tune; nor does a search whose
        fitness comes from a table (it has no supernet)."""
        if not SOURCES[self.fitness].trains:
            return False
        return self.method == "sft-ga" if self.finetune is None else self.finetune

    @property
    def warmup_total(self) -> int:
        """Warm-up steps this search trains: `warmup_steps`, plus generations x finetune_steps for a search that
        does not fine-tune when `equal_compute` is on."""
        extra = self.generations * self.finetune_steps if self.equal_compute and not self.uses_finetune else 0
        return self.warmup_steps + extra

    @property
    def evaluation_budget(self) -> int:
        """New genotypes evaluated in a whole search: the same for every method."""
        return self.population * (self.generations + 1)

    # --- validation --------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `ConfigError` (one line naming the value and what is allowed) on the first bad setting."""
        settings.validate(self)
        self.check_relations()

    def check_relations(self) -> None:
        """The checks that involve several settings (each setting on its own is `settings.validate`'s)."""
        if self.method in ("ga", "random") and self.finetune:
            raise ConfigError(
                f"finetune=True contradicts method={self.method!r}, a baseline without fine-tuning; "
                "use method='sft-ga' (the method) to fine-tune"
            )
        if self.final_pick == "retrain" and self.final_top_k > self.evaluation_budget:
            raise ConfigError(f"final_top_k={self.final_top_k} exceeds the {self.evaluation_budget} networks this "
                              "search evaluates; allowed: final_top_k <= population x (generations + 1)")
        if self.top_k > self.population:
            raise ConfigError(f"top_k={self.top_k} exceeds population={self.population}; allowed: 1..population")
        networks = get_space(self.space).distinct()
        if self.evaluation_budget > networks:
            raise ConfigError(f"population={self.population} x (generations={self.generations} + 1) new networks "
                              f"exceed the {networks:,} distinct networks of the {self.space} space; allowed: "
                              f"population x (generations + 1) <= {networks:,}")
        self.check_latency()
        if self.table_noise and not SOURCES[self.fitness].needs_table:
            raise ConfigError(f"table_noise={self.table_noise} needs fitness='table'; "
                              "allowed: 0 with fitness='supernet'")
        if SOURCES[self.fitness].needs_table or self.table is not None:
            from nasviz.table import ground_truth

            if ground_truth(self.space, self.dataset, self.table) is None:
                raise ConfigError(f"fitness={self.fitness!r} needs a ground-truth table, and there is none for "
                                  f"space={self.space!r} on dataset={self.dataset!r}; allowed: space='mini' with "
                                  "dataset='fashion-mnist' (once its table is built), or table=<a table file>")
        dataset = check_dataset_name(self.dataset)
        if dataset in BUILTIN:
            self.check_train_images(BUILTIN[dataset].train_images, dataset)

    def check_latency(self) -> None:
        """A latency limit or a latency Pareto objective needs a profile; a profile must be readable and of this
        space (its whole layout is checked once the data's shape is known, see `nasviz.latency.budget`)."""
        wants = [f"{k}={getattr(self, k)!r}" for k, on in (("max_latency_ms", self.max_latency_ms is not None),
                                                           ("pareto_size", self.pareto_size == "latency")) if on]
        if not wants and self.latency_profile is None:
            return
        from nasviz.latency import MAKE, load_profile  # torch: only for a search that uses latency

        if wants and self.latency_profile is None:
            raise ConfigError(f"{wants[0]} needs latency_profile=FILE, a latency profile of this device; make one "
                              f"with: {MAKE}", setting="latency_profile")
        if self.latency_profile is not None:
            prof = load_profile(self.latency_profile)
            if prof.layout.space != self.space:
                raise ConfigError(f"latency_profile={self.latency_profile!r} was made for the {prof.layout.space} "
                                  f"space, this search uses space={self.space!r}; make one for it with: {MAKE}",
                                  setting="latency_profile")

    def fitted(self, n_train: int, dataset: str) -> SearchConfig:
        """This config for a training set of `n_train` images. The preset's own weight_images and fitness_images are
        upper bounds: with a smaller dataset they shrink to what it has (in proportion; one line says so on the
        "nasviz" logger). Sizes set explicitly are never changed: too large, they are a `ConfigError`."""
        need = self.weight_images if self.weight_images is not None else self.batch_size
        if self.fitness_images + need <= n_train or self.preset not in PRESETS:
            self.check_train_images(n_train, dataset)
            return self
        preset = {**self.__class__().to_dict(), **PRESETS[self.preset]}
        own_w = self.weight_images is not None and self.weight_images == preset["weight_images"]
        own_f = self.fitness_images == preset["fitness_images"]
        n, w, f, batch = n_train, self.weight_images, self.fitness_images, self.batch_size
        if own_f and own_w:  # both the preset's: shrink both, in proportion
            f = max(1, n * f // (f + w))
            w = n - f
        elif own_f:  # the weight part set explicitly (or None: what the fitness part leaves)
            f = min(f, n - batch) if w is None else n - w
        elif own_w:  # the fitness part set explicitly
            w = n - f
        if not (own_f or own_w):
            self.check_train_images(n, dataset)  # the explicit sizes do not fit
        if own_f and not own_w and w is not None and f < 1:
            raise ConfigError(f"weight_images={w} leaves none of {dataset}'s {n} training images to measure fitness; "
                              f"allowed: weight_images <= {n - 1}")
        if own_w and not own_f and w < batch:
            dataclasses.replace(self, weight_images=None).check_train_images(n, dataset)
        weights = n - f if w is None else w
        if batch == preset["batch_size"] and 2 <= weights < batch:  # the preset's batch is an upper bound too
            batch = weights
        if f < 1 or weights < batch:
            raise ConfigError(f"{dataset} has {n} training images, too few for a batch of batch_size={batch} and "
                              f"fitness images; allowed: at least {batch + 1} training images, or a smaller "
                              "batch_size")
        fitted = dataclasses.replace(self, weight_images=w, fitness_images=f, batch_size=batch)
        fitted.check_train_images(n_train, dataset)
        logging.getLogger("nasviz").warning(
            f"nasviz: {dataset} has {n_train} training images, fewer than the {self.preset} preset's "
            f"weight_images={self.weight_images} + fitness_images={self.fitness_images}: using weight_images={w}, "
            f"fitness_images={f}" + (f", batch_size={batch}" if batch != self.batch_size else ""))
        return fitted

    def check_train_images(self, n_train: int, dataset: str) -> None:
        """Raise `ConfigError` unless the weight and fitness parts fit into `n_train` training images (checked in
        `validate` for a built-in dataset, and once loaded, before any training, for an image folder)."""
        need = self.weight_images if self.weight_images is not None else self.batch_size
        if self.final_pick == "retrain" and self.weight_images is None:
            raise ConfigError("weight_images=None leaves no held-out images for final_pick='retrain'; allowed: "
                              f"weight_images <= {max(n_train - self.fitness_images - self.final_images, 0)}")
        if self.final_pick == "retrain" and self.weight_images + self.fitness_images + self.final_images > n_train:
            raise ConfigError(f"final_images={self.final_images} + weight_images={self.weight_images} + "
                              f"fitness_images={self.fitness_images} exceed {dataset}'s {n_train} training images "
                              f"(final_pick=retrain scores on images neither part uses); allowed: final_images <= "
                              f"{max(n_train - self.weight_images - self.fitness_images, 0)}")
        if self.fitness_images + need <= n_train:
            return
        if self.fitness_images >= n_train:
            raise ConfigError(
                f"fitness_images={self.fitness_images} is more than the {n_train} training images {dataset} has; "
                f"allowed: fitness_images <= {max(n_train - need, 0)}"
            )
        if self.weight_images is None and self.batch_size >= n_train:  # the batch alone does not fit
            raise ConfigError(
                f"batch_size={self.batch_size} is more than the {n_train} training images {dataset} has (which also "
                f"hold fitness_images={self.fitness_images}); allowed: batch_size <= "
                f"{max(n_train - self.fitness_images, 2)}")
        if self.weight_images is not None and self.weight_images >= n_train:
            raise ConfigError(
                f"weight_images={self.weight_images} is not less than the {n_train} training images {dataset} has, "
                f"which also hold fitness_images={self.fitness_images}; allowed: weight_images <= "
                f"{max(n_train - self.fitness_images, self.batch_size)}")
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
