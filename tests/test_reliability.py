"""Reliability and safety: bad input, crashes, corrupt or hostile files, diverging training.

Bad input is checked before any work (one line naming the value and what is allowed; the CLI exits with 2);
run files are written atomically, so kill -9 at any moment leaves a resumable run; checkpoints load with
weights_only=True and genotype text is parsed, never evaluated; a NaN loss stops training and keeps the
last good checkpoint. Long runs' memory is measured by benchmarks/memory_growth.py.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from nasviz import cli
from nasviz.data.loading import BatchStream, ImageData
from nasviz.deploy.export import export_model
from nasviz.deploy.predict import image_files
from nasviz.errors import CheckpointError, ConfigError, DivergedError, NasvizError
from nasviz.runs import rundir
from nasviz.runs.rundir import load_history
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import Genotype
from nasviz.train.scratch import ScratchConfig, train_from_scratch

REPO = Path(__file__).resolve().parents[1]
MAIN_NB = str(REPO / "notebooks" / "03_search.ipynb")
TINY = dict(warmup_steps=4, population=2, generations=2, finetune_steps=2, fitness_images=32, weight_images=64,
            batch_size=16, eval_batch_size=32, bn_batches=1, checkpoint_every=2, top_k=2, record_before=False)
# the CLI runs that are killed: one generation more, so every moment to kill at comes while the process still runs
CLI_SETTINGS = dict(TINY, generations=3)
DEADLINE_S = 240.0
PAYLOAD = "__import__('os').system('touch MARKER')"


def tiny(**overrides) -> SearchConfig:
    return SearchConfig.from_preset("smoke", **{**TINY, **overrides})


def cells(normal: str, reduce: str | None = None) -> str:
    """Genotype text with `normal` as the normal cell's pair list (the reduce cell: a valid one)."""
    valid = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), "
             "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)]")
    return (f"Genotype(normal={normal}, normal_concat=[2, 3, 4, 5], reduce={reduce or valid}, "
            f"reduce_concat=[2, 3, 4, 5])")


def pairs(*edges: tuple[str, int]) -> str:
    return "[" + ", ".join(f"({op!r}, {i})" for op, i in edges) + "]"


GOOD = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)]


def with_edge(k: int, edge: tuple[str, int]) -> str:
    edges = list(GOOD)
    edges[k] = edge
    return cells(pairs(*edges))


def everything(folder: Path) -> dict[str, bytes]:
    """Every file of a user's folder, the lock file included (a command that refuses a folder creates nothing)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def snapshot(folder: Path) -> dict[str, bytes]:
    """The run's files and their bytes (the lock file records who last wrote there, not the run)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != rundir.LOCK}


# --- shared runs ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gen1_run(tmp_path_factory) -> Path:
    """A tiny search stopped after generation 1 of 2 (a checkpoint, history and result.json), made from an empty
    working directory beside it (`test_a_run_writes_only_inside_its_directory` checks both)."""
    base = tmp_path_factory.mktemp("shared")
    (base / "cwd").mkdir()
    cwd = os.getcwd()
    os.chdir(base / "cwd")
    try:
        search = Search(tiny(), base / "gen1")
        search.step()
        search.step()
    finally:
        os.chdir(cwd)
    assert search.generation == 1 and not search.done
    return base / "gen1"


@pytest.fixture
def run_copy(gen1_run, tmp_path) -> Path:
    """A private copy of `gen1_run` that a test may change."""
    return Path(shutil.copytree(gen1_run, tmp_path / "copy"))


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Ten 8x8 grayscale PNGs in two classes (8 for training, 2 held out)."""
    from PIL import Image

    root = tmp_path / "images"
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(5):
            Image.new("L", (8, 8), color=40 * i + c).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.fixture
def ctx(tmp_path, gen1_run, image_folder) -> dict[str, Any]:
    """Paths the bad-input cases refer to: {out} (must stay absent), {run}, {file}, {empty}, {missing}, {mine} and
    {trained} (a user's folders: must stay as they are), ..."""
    (tmp_path / "a-file.txt").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text('{"my": "own settings"}\n')
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "model.pt").write_bytes(b"my own model")
    return {"out": str(tmp_path / "out"), "run": str(gen1_run), "file": str(tmp_path / "a-file.txt"),
            "empty": str(tmp_path / "empty"), "missing": str(tmp_path / "missing"), "images": str(image_folder),
            "tmp": str(tmp_path), "mine": str(tmp_path / "mine"), "trained": str(tmp_path / "trained")}


USERS = ("mine", "trained")
"""The ctx folders that hold a user's files: no case may change them."""


# --- 1. bad input: one table, run through the Python API and the CLI -------------------------------------
@dataclass
class Bad:
    id: str
    fragment: str
    api: Callable[[dict], Any] | None = None
    cli: list[str] | None = None
    cli_fragment: str | None = None
    needs: tuple[str, ...] = field(default_factory=tuple)


def smoke(*sets: str) -> list[str]:
    """`search --preset smoke --set ... --out {out}`."""
    return ["search", "--preset", "smoke", *[a for s in sets for a in ("--set", s)], "--out", "{out}"]


def cfg(**overrides) -> Callable[[dict], Any]:
    return lambda ctx: SearchConfig.from_preset("smoke", **overrides)


def resume(overrides: dict | None = None, where: str = "run", **kw) -> Callable[[dict], Any]:
    return lambda ctx: Search.resume(ctx[where], overrides, **kw)


BAD: list[Bad] = [
    # SearchConfig: types, ranges, budgets
    Bad("population<2", "population=1 is out of range; allowed: an integer in 2..10000", cfg(population=1),
        smoke("population=1")),
    Bad("population-text", "population='ten' is not allowed; allowed: an integer", cfg(population="ten"),
        smoke("population=ten")),
    Bad("population-float", "population=2.5 has the wrong type; allowed: an integer", cfg(population=2.5)),
    Bad("population-bool", "population=True has the wrong type", cfg(population=True)),
    Bad("p_crossover>1", "p_crossover=1.5 is out of range; allowed: a probability in [0, 1]", cfg(p_crossover=1.5),
        smoke("p_crossover=1.5")),
    Bad("p_mutation<0", "p_mutation=-0.1 is out of range", cfg(p_mutation=-0.1), smoke("p_mutation=-0.1")),
    Bad("warmup_steps<0", "warmup_steps=-1 is out of range; allowed: an integer in 0..1000000000",
        cfg(warmup_steps=-1)),
    Bad("finetune_steps=0", "finetune_steps=0 is out of range; allowed: an integer in 1..1000000000",
        cfg(finetune_steps=0)),
    Bad("generations<0", "generations=-1 is out of range", cfg(generations=-1), smoke("generations=-1")),
    Bad("lr=0", "lr=0.0 must be a positive number", cfg(lr=0), smoke("lr=0")),
    Bad("lr=inf", "lr=inf is not allowed; allowed: a finite number", cfg(lr=float("inf")), smoke("lr=inf")),
    Bad("lr=nan", "lr=nan is not allowed; allowed: a finite number", cfg(lr=float("nan"))),
    Bad("finetune_lr<0", "finetune_lr=-1.0 must be a positive number", cfg(finetune_lr=-1)),
    Bad("momentum=1", "momentum=1.0 is out of range; allowed: [0, 1)", cfg(momentum=1.0)),
    Bad("weight_decay<0", "weight_decay=-1.0 is out of range; allowed: [0, 1]", cfg(weight_decay=-1)),
    Bad("grad_clip=0", "grad_clip=0.0 must be a positive number", cfg(grad_clip=0)),
    Bad("channels-odd", "channels=5 is out of range; allowed: an even integer in 2..1024", cfg(channels=5),
        smoke("channels=5")),
    Bad("channels-huge", "channels=100000 is out of range; allowed: an even integer in 2..1024",
        cfg(channels=100000), smoke("channels=100000")),
    Bad("layers=0", "layers=0 is out of range; allowed: an integer in 1..100", cfg(layers=0)),
    Bad("layers-huge", "layers=1000 is out of range; allowed: an integer in 1..100", cfg(layers=1000),
        smoke("layers=1000")),
    Bad("batch_size=0", "batch_size=0 is out of range", cfg(batch_size=0)),
    Bad("weight_images<batch", "weight_images=10 is smaller than batch_size=32; allowed: weight_images >= batch_size",
        cfg(weight_images=10)),
    Bad("fitness_images=0", "fitness_images=0 is out of range", cfg(fitness_images=0)),
    Bad("fitness_images>dataset", "fitness_images=70000 is more than the 60000 training images fashion-mnist has",
        cfg(fitness_images=70000), smoke("fitness_images=70000")),
    Bad("weight+fitness>dataset", "weight_images=50000 + fitness_images=20000 exceed fashion-mnist's 60000",
        cfg(weight_images=50000, fitness_images=20000)),
    Bad("cifar10-split", "weight_images=50000 is not less than the 50000 training images cifar10 has, which also "
        "hold fitness_images=200; allowed: weight_images <= 49800",
        cfg(dataset="cifar10", weight_images=50000), smoke("dataset=cifar10", "weight_images=50000")),
    Bad("no-room-for-weights", "leaves 10 of fashion-mnist's 60000 training images for the weights, fewer than "
        "batch_size=32", cfg(weight_images=None, fitness_images=59990)),
    Bad("imagefolder-too-small", "fitness_images=32 is more than the 8 training images imagefolder:",
        lambda ctx: Search(tiny(dataset=f"imagefolder:{ctx['images']}"), ctx["out"]),
        ["search", "--preset", "smoke", "--dataset", "imagefolder:{images}", "--set", "fitness_images=64",
         "--out", "{out}"], "fitness_images=64 is more than the 8 training images"),
    Bad("eval_batch_size=0", "eval_batch_size=0 is out of range", cfg(eval_batch_size=0)),
    Bad("bn_batches=0", "bn_batches=0 is out of range", cfg(bn_batches=0)),
    Bad("checkpoint_every=0", "checkpoint_every=0 is out of range", cfg(checkpoint_every=0)),
    Bad("top_k>population", "top_k=9 exceeds population=4", cfg(top_k=9), smoke("top_k=9")),
    Bad("seed<0", "seed=-1 is out of range", cfg(seed=-1), ["search", "--preset", "smoke", "--seed", "-1",
                                                            "--out", "{out}"]),
    Bad("seed-text", "seed='abc' is not allowed; allowed: an integer", cfg(seed="abc"),
        ["search", "--preset", "smoke", "--seed", "abc", "--out", "{out}"]),
    Bad("bool-text", "augment='maybe' is not allowed; allowed: true or false", cfg(augment="maybe"),
        smoke("augment=maybe")),
    Bad("finetune-vs-baseline", "finetune=True contradicts method='ga'", cfg(method="ga", finetune=True),
        smoke("method=ga", "finetune=true")),
    # names, with a close-match suggestion
    Bad("dataset-typo", "unknown dataset 'fashion_mnist' (did you mean 'fashion-mnist'?)",
        cfg(dataset="fashion_mnist"), ["search", "--preset", "smoke", "--dataset", "fashion_mnist", "--out", "{out}"]),
    Bad("imagefolder-missing", "does not exist", lambda ctx: tiny(dataset=f"imagefolder:{ctx['missing']}")),
    Bad("data_root-file", "is not a folder; allowed: a folder or none", lambda ctx: tiny(data_root=ctx["file"]),
        ["search", "--preset", "smoke", "--data-root", "{file}", "--out", "{out}"]),
    Bad("preset-typo", "unknown preset 'quik' (did you mean 'quick'?)", lambda ctx: SearchConfig.from_preset("quik"),
        ["search", "--preset", "quik", "--out", "{out}"]),
    Bad("method-typo", "unknown method 'sftga' (did you mean 'sft-ga'?)", cfg(method="sftga"),
        ["search", "--preset", "smoke", "--method", "sftga", "--out", "{out}"]),
    Bad("path_sampling-typo", "unknown path_sampling 'regoin' (did you mean 'region'?)", cfg(path_sampling="regoin"),
        smoke("path_sampling=regoin")),
    Bad("device-name", "device='gpu' is not allowed", cfg(device="gpu"),
        ["search", "--preset", "smoke", "--device", "gpu", "--out", "{out}"]),
    Bad("device-index", "device='cuda:x' is not allowed", cfg(device="cuda:x")),
    Bad("device-absent", "device='cuda' is not available", lambda ctx: Search(tiny(device="cuda"), ctx["out"]),
        ["search", "--preset", "smoke", "--device", "cuda", "--out", "{out}"], needs=("no-cuda",)),
    Bad("setting-typo", "unknown setting 'populaton' (did you mean 'population'?)", cfg(populaton=4),
        smoke("populaton=4")),
    # genotype text (parsed, never evaluated)
    Bad("genotype-syntax", "cannot parse genotype text", lambda ctx: Genotype.parse("Genotype(normal=[(,"),
        ["info", "--genotype", "Genotype(normal=[(,"]),
    Bad("genotype-unknown-op", "unknown operation 'sep_conv_7x7'",
        lambda ctx: Genotype.parse(with_edge(2, ("sep_conv_7x7", 0))),
        ["info", "--genotype", with_edge(2, ("sep_conv_7x7", 0))]),
    Bad("genotype-op-typo", "(did you mean 'max_pool_3x3'?)",
        lambda ctx: Genotype.parse(with_edge(0, ("max_pool_3", 0)))),
    Bad("genotype-none", "normal[1] uses 'none'", lambda ctx: Genotype.parse(with_edge(1, ("none", 1))),
        ["train", "--genotype", with_edge(1, ("none", 1)), "--out", "{out}"]),
    Bad("genotype-pair-count", "normal cell has 7 (op, input) pairs; exactly 8 are required",
        lambda ctx: Genotype.parse(cells(pairs(*GOOD[:7])))),
    Bad("genotype-input-range", "normal[1] input 2 is out of range; node 0 takes inputs 0..1",
        lambda ctx: Genotype.parse(with_edge(1, ("sep_conv_3x3", 2))),
        ["info", "--genotype", with_edge(1, ("sep_conv_3x3", 2))]),
    Bad("genotype-same-input", "normal node 1 takes input 1 twice", lambda ctx: Genotype.parse(
        with_edge(2, ("skip_connect", 1)))),
    Bad("genotype-concat", "normal_concat = [2, 3] is not supported",
        lambda ctx: Genotype.parse(cells(pairs(*GOOD)).replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3]"))),
    Bad("genotype-fixture-typo", "is not a Genotype(...) call or a fixture name",
        lambda ctx: Genotype.parse("DARTS_V9")),
    Bad("genotype-payload", "is not a Genotype(...) call", lambda ctx: Genotype.parse(PAYLOAD),
        ["info", "--genotype", PAYLOAD]),
    Bad("genotype-payload-inside", "which is not allowed", lambda ctx: Genotype.parse(cells(PAYLOAD)),
        ["train", "--genotype", cells(PAYLOAD), "--out", "{out}"]),
    # resuming
    Bad("resume-mismatch", "with population=4, but the run used population=2", resume({"population": "4"}),
        ["search", "--resume", "{run}", "--set", "population=4"]),
    Bad("resume-dataset-mismatch", "with dataset='mnist', but the run used dataset='fashion-mnist'",
        resume({"dataset": "mnist"}), ["search", "--resume", "{run}", "--dataset", "mnist"]),
    Bad("resume-typo", "unknown setting 'populaton'", resume({"populaton": 4}),
        ["search", "--resume", "{run}", "--set", "populaton=4"]),
    Bad("resume-forced-shape", "does not match this search", resume({"channels": 6}, force=True)),
    Bad("resume-missing", "does not exist", resume(where="missing"), ["search", "--resume", "{missing}"]),
    Bad("resume-file", "is not a directory", resume(where="file")),
    Bad("resume-no-checkpoint", "no checkpoint at", resume(where="empty"), ["search", "--resume", "{empty}"]),
    Bad("resume-a-users-folder", "no checkpoint at", resume(where="mine"), ["search", "--resume", "{mine}"]),
    # CLI arguments
    Bad("set-no-equals", "--set 'population' is not key=value", None, ["search", "--set", "population",
                                                                         "--out", "{out}"]),
    Bad("search-no-out", "--out DIR is required", None, ["search", "--preset", "smoke"]),
    Bad("resume-with-preset", "--resume DIR continues a run", None, ["search", "--resume", "{run}", "--preset",
                                                                     "smoke"]),
    Bad("override-without-resume", "--override applies only with --resume", None,
        ["search", "--preset", "smoke", "--override", "--out", "{out}"]),
    Bad("out-is-a-file", "exists and is not a directory", lambda ctx: Search(tiny(), ctx["file"]),
        ["search", "--preset", "smoke", "--out", "{file}"]),
    Bad("out-under-a-file", "is not a directory", lambda ctx: Search(tiny(), Path(ctx["file"]) / "run"),
        ["search", "--preset", "smoke", "--out", "{file}/run"]),
    Bad("info-layers", "--layers 0 / --channels 36", None, ["info", "--genotype", "DARTS_V2", "--layers", "0"]),
    Bad("info-dataset", "unknown dataset 'cifar11' (did you mean 'cifar10'?)", None,
        ["info", "--genotype", "DARTS_V2", "--dataset", "cifar11"]),
    Bad("argparse-type", "argument --layers: invalid int value: 'x'", None,
        ["info", "--genotype", "DARTS_V2", "--layers", "x"]),
    Bad("argparse-unknown-option", "unrecognized arguments: --populaton", None,
        ["search", "--preset", "smoke", "--populaton", "4", "--out", "{out}"]),
    Bad("argparse-command", "invalid choice: 'serch'", None, ["serch"]),
    Bad("train-epochs", "epochs=0 is out of range", lambda ctx: ScratchConfig.from_settings({"epochs": "0"}),
        ["train", "--genotype", "DARTS_V2", "--epochs", "0", "--out", "{out}"]),
    Bad("train-set-typo", "unknown training setting 'epoch' (did you mean 'epochs'?)",
        lambda ctx: ScratchConfig.from_settings({"epoch": "3"}),
        ["train", "--genotype", "DARTS_V2", "--set", "epoch=3", "--out", "{out}"]),
    Bad("train-device", "device='gpu' is not allowed", None,
        ["train", "--genotype", "DARTS_V2", "--device", "gpu", "--out", "{out}"]),
    Bad("data-name", "unknown dataset 'fashionmnist' (did you mean 'fashion-mnist'?)", None, ["data", "fashionmnist"]),
    # never write what is not ours: blank paths, a user's folder, a path too long or under a file (issue 16.3)
    Bad("out-blank", "out='' is blank; allowed: a folder path", lambda ctx: Search(tiny(), ""),
        ["search", "--preset", "smoke", "--out", ""], "argument --out: a blank value '' is not allowed"),
    Bad("out-whitespace", "out='  ' is blank", lambda ctx: Search(tiny(), "  "),
        ["search", "--preset", "smoke", "--out", "  "], "argument --out: a blank value '  ' is not allowed"),
    Bad("resume-blank", "resume=' ' is blank", lambda ctx: Search.resume(" "), ["search", "--resume", " "],
        "argument --resume: a blank value"),
    Bad("out-holds-user-files", "is not empty (it holds 'config.json', 'notes.txt') and holds no nasviz run",
        lambda ctx: Search(tiny(), ctx["mine"]), ["search", "--preset", "smoke", "--out", "{mine}"]),
    Bad("out-name-too-long", "is too long; allowed: names of at most 255 bytes",
        lambda ctx: Search(tiny(), Path(ctx["tmp"]) / ("x" * 300)),
        ["search", "--preset", "smoke", "--out", "{tmp}/" + "x" * 300]),
    Bad("data_root-blank", "is blank; allowed: a folder or none", cfg(data_root=" "),
        ["search", "--preset", "smoke", "--data-root", " ", "--out", "{out}"], "argument --data-root: a blank value"),
    Bad("train-out-blank", "out=' ' is blank", lambda ctx: rundir.check_output_folder(" ", (rundir.SCRATCH,)),
        ["train", "--genotype", "DARTS_V2", "--out", " "], "argument --out: a blank value"),
    Bad("train-out-holds-a-model", "already holds model.pt; choose another folder (nothing is overwritten)",
        lambda ctx: rundir.check_output_folder(ctx["trained"], (rundir.SCRATCH, "model.pt")),
        ["train", "--genotype", "DARTS_V2", "--epochs", "1", "--out", "{trained}"]),
    Bad("render-out-under-a-file", "a-file.txt is a file, not a folder", None,
        ["render", "--genotype", "DARTS_V2", "--out", "{file}/cells.svg"]),
    Bad("render-out-too-long", "is too long", None,
        ["render", "--genotype", "DARTS_V2", "--out", "{tmp}/" + "x" * 300 + ".svg"]),
    Bad("predict-blank", "image path ' ' is blank", lambda ctx: image_files([" "]),
        ["predict", "--model", "{file}", " "], "argument images: a blank value"),
    Bad("export-out-blank", "out=' ' is blank", lambda ctx: export_model(ctx["file"], "torchscript", " "),
        ["export", "--model", "{file}", "--format", "torchscript", "--out", " "], "argument --out: a blank value"),
    Bad("batch-out-blank", "argument --out: a blank value", None, ["batch", MAIN_NB, "--grid", "seed=1", "--out", ""]),
    Bad("batch-shared-run-dir", "-p out gives every point the same run directory", None,
        ["batch", MAIN_NB, "--grid", "seed=0,1", "-p", "out", "{out}", "--out", "{out}"]),
    Bad("batch-same-run-dir-twice", "would write the same run directory", None,
        ["batch", MAIN_NB, "--grid", "out={out}/a,{out}/./a", "--out", "{out}"]),
    # every numeric setting bounded by what float32/int64 training can run, before anything starts (16.4)
    Bad("lr-overflows-float32", "lr=1e+39 is out of range; allowed: a positive number <= 1e6", cfg(lr=1e39),
        smoke("lr=1e39")),
    Bad("finetune_lr-overflows", "finetune_lr=1e+300 is out of range", cfg(finetune_lr=1e300),
        smoke("finetune_lr=1e300")),
    Bad("weight_decay-overflows", "weight_decay=1e+300 is out of range; allowed: [0, 1]", cfg(weight_decay=1e300),
        smoke("weight_decay=1e300")),
    Bad("grad_clip-overflows", "grad_clip=1e+39 is out of range; allowed: a positive number <= 1e6",
        cfg(grad_clip=1e39)),
    Bad("population-huge", f"population={10**30} is out of range; allowed: an integer in 2..10000",
        cfg(population=10**30), smoke(f"population={10**30}")),
    Bad("generations-huge", f"generations={10**30} is out of range", cfg(generations=10**30),
        smoke(f"generations={10**30}")),
    Bad("warmup_steps-huge", f"warmup_steps={10**30} is out of range; allowed: an integer in 0..1000000000",
        cfg(warmup_steps=10**30)),
    Bad("finetune_steps-huge", "finetune_steps=1000000001 is out of range", cfg(finetune_steps=10**9 + 1)),
    Bad("eval_batch_size-huge", f"eval_batch_size={10**20} is out of range; allowed: an integer in 1..65536",
        cfg(eval_batch_size=10**20)),
    Bad("bn_batches-huge", f"bn_batches={10**20} is out of range", cfg(bn_batches=10**20)),
    Bad("checkpoint_every-huge", f"checkpoint_every={10**20} is out of range", cfg(checkpoint_every=10**20)),
    Bad("batch_size=1", "batch_size=1 is out of range; allowed: an integer in 2..65536 (BatchNorm needs 2 images",
        cfg(batch_size=1), smoke("batch_size=1")),
    Bad("budget-beyond-the-space", "population=300 x (generations=2 + 1) new networks exceed the 648 distinct networks",
        cfg(space="mini", population=300), smoke("space=mini", "population=300")),
    Bad("table-threads-0", "--threads=0 is out of range; allowed: an integer in 1..256", None,
        ["table", "build", "--out", "{out}", "--threads", "0"]),
    Bad("table-threads-huge", "--threads=100000 is out of range", None,
        ["table", "build", "--out", "{out}", "--threads", "100000"]),
    Bad("table-pilot<0", "--pilot=-5 is out of range", None, ["table", "build", "--out", "{out}", "--pilot", "-5"]),
    Bad("table-seeds-text", "--seeds 'a,b' is not allowed", None,
        ["table", "build", "--out", "{out}", "--pilot", "2", "--seeds", "a,b"]),
    Bad("info-layers-huge", "--layers 100000 / --channels 36: allowed: layers in 1..100", None,
        ["info", "--genotype", "DARTS_V2", "--layers", "100000"]),
    Bad("info-channels-huge", "even channels in 2..1024", None,
        ["info", "--genotype", "DARTS_V2", "--channels", "100000"]),
    # `train` is checked as `search` is, and leaves nothing behind (16.5)
    Bad("train-seed-70-bit", f"seed={2**70} is out of range; allowed: an integer in 0..2**63-1",
        lambda ctx: ScratchConfig.from_settings({"seed": str(2**70)}),
        ["train", "--genotype", "DARTS_V2", "--seed", str(2**70), "--out", "{out}"]),
    Bad("train-seed<0", "seed=-1 is out of range", lambda ctx: ScratchConfig.from_settings({"seed": -1}),
        ["train", "--genotype", "DARTS_V2", "--seed", "-1", "--out", "{out}"]),
    Bad("train-size-1", "train_size=1 is out of range; allowed: an integer >= 2 or none",
        lambda ctx: ScratchConfig.from_settings({"train_size": 1}),
        ["train", "--genotype", "DARTS_V2", "--train-size", "1", "--out", "{out}"]),
    Bad("train-batch-size-1", "batch_size=1 is out of range; allowed: an integer in 2..65536",
        lambda ctx: ScratchConfig.from_settings({"batch_size": 1}),
        ["train", "--genotype", "DARTS_V2", "--batch-size", "1", "--out", "{out}"]),
    Bad("train-one-image", "tiny has 1 training image(s); training needs at least 2",
        lambda ctx: ScratchConfig().check_data(1, "tiny")),
    Bad("train-cutout<0", "cutout=-1 is out of range; allowed: an integer in 0..1024",
        lambda ctx: ScratchConfig.from_settings({"cutout": "-1"}),
        ["train", "--genotype", "DARTS_V2", "--set", "cutout=-1", "--out", "{out}"]),
    Bad("train-epochs-huge", "epochs=1000000 is out of range; allowed: an integer in 1..100000",
        lambda ctx: ScratchConfig.from_settings({"epochs": 10**6}),
        ["train", "--genotype", "DARTS_V2", "--epochs", "1000000", "--out", "{out}"]),
    Bad("train-lr-overflows", "lr=1e+39 is out of range", lambda ctx: ScratchConfig.from_settings({"lr": "1e39"}),
        ["train", "--genotype", "DARTS_V2", "--set", "lr=1e39", "--out", "{out}"]),
    Bad("train-weight_decay-overflows", "weight_decay=1e+300 is out of range",
        lambda ctx: ScratchConfig.from_settings({"weight_decay": 1e300}),
        ["train", "--genotype", "DARTS_V2", "--set", "weight_decay=1e300", "--out", "{out}"]),
    Bad("train-aux-weight-huge", "auxiliary_weight=1e+300 is out of range",
        lambda ctx: ScratchConfig.from_settings({"auxiliary_weight": 1e300})),
    # the preset, and resuming into fewer generations than were run (16.12, 16.9)
    Bad("preset-blank", "unknown preset ''", lambda ctx: SearchConfig.from_preset(""),
        ["search", "--preset", "", "--out", "{out}"], "argument --preset: a blank value '' is not allowed"),
    Bad("preset-set", "preset='paper' cannot be set: it records the preset these settings start from ('smoke')",
        lambda ctx: SearchConfig.from_preset("smoke", preset="paper"), smoke("preset=paper")),
    Bad("resume-generations-below-the-run", "generations=0 is fewer than the 1 this run has done",
        resume({"generations": 0}), ["search", "--resume", "{run}", "--set", "generations=0"]),
]

CUDA = torch.cuda.is_available()


def _skip(case: Bad) -> None:
    if "no-cuda" in case.needs and CUDA:
        pytest.skip("this machine has CUDA")


def test_the_table_covers_at_least_thirty_kinds():
    assert len({c.id for c in BAD}) == len(BAD) >= 30
    assert sum(c.cli is not None for c in BAD) >= 20


@pytest.mark.parametrize("case", [c for c in BAD if c.api is not None], ids=lambda c: c.id)
def test_bad_input_through_the_api(case, ctx):
    _skip(case)
    users = {name: everything(Path(ctx[name])) for name in USERS}
    with pytest.raises(NasvizError) as info:
        case.api(ctx)
    message = str(info.value)
    assert case.fragment in message
    assert "\n" not in message
    assert not Path(ctx["out"]).exists()
    assert {name: everything(Path(ctx[name])) for name in USERS} == users


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`nasviz.cli.main(argv)` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", [c for c in BAD if c.cli is not None], ids=lambda c: c.id)
def test_bad_input_through_the_cli(case, ctx, capsys):
    _skip(case)
    before = snapshot(Path(ctx["run"]))
    users = {name: everything(Path(ctx[name])) for name in USERS}
    code, out, err = run_cli([a.format(**ctx) for a in case.cli], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nasviz: error: ")
    assert (case.cli_fragment or case.fragment) in lines[0]
    assert "Traceback" not in err and out == ""
    assert not Path(ctx["out"]).exists()
    assert snapshot(Path(ctx["run"])) == before  # a refused resume changes nothing
    assert {name: everything(Path(ctx[name])) for name in USERS} == users  # a user's files neither


def subprocess_cli(*args: str, cwd: Path, timeout: float = DEADLINE_S) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("argv", [
    ["search", "--preset", "smoke", "--set", "populaton=4", "--out", "out"],
    ["info", "--genotype", PAYLOAD],
    ["train", "--genotype", cells(PAYLOAD), "--out", "out"],
], ids=["set-typo", "info-payload", "train-payload"])
def test_bad_input_in_a_real_process_is_one_line_and_exit_2(argv, tmp_path):
    done = subprocess_cli(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []  # neither out/ nor MARKER


def test_a_missing_dataset_offline_names_the_three_ways_to_provide_it(tmp_path, monkeypatch, capsys):
    import torchvision.datasets

    monkeypatch.setattr("nasviz.data.loading.DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian-files"))
    (tmp_path / "root").mkdir()
    code, _, err = run_cli(["data", "fashion-mnist", "--root", str(tmp_path / "root"), "--offline"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    for way in ("three ways", "--root DIR", "apt-get install dataset-fashion-mnist", "internet"):
        assert way in err

    def no_internet(self):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", no_internet)
    out = tmp_path / "out"
    code, _, err = run_cli(["search", "--preset", "smoke", "--data-root", str(tmp_path / "root"), "--out", str(out),
                            "--quiet"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "download failed" in err and "apt-get install dataset-fashion-mnist" in err
    assert "(command line: --data-root DIR)" in err  # the option of this command, not `data`'s --root
    assert not out.exists()
    assert list((tmp_path / "root").iterdir()) == []  # the failed download's folders are gone again


# --- 2. faults: kill -9 at several moments, SIGINT, truncated checkpoints ----------------------------------
def cli_search_args(run_dir: Path) -> list[str]:
    sets = [a for k, v in CLI_SETTINGS.items() for a in ("--set", f"{k}={v}")]
    return ["search", "--preset", "smoke", "--seed", "0", *sets, "--out", str(run_dir), "--quiet"]


def start_search(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "nasviz", *cli_search_args(run_dir)], cwd=run_dir.parent, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    """Poll `condition` until it holds; fail if the process ends first or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the search ended (code {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {DEADLINE_S} s")
        time.sleep(0.01)  # a polling interval, not a wait for the event


def has_generation(run_dir: Path, g: int) -> Callable[[], bool]:
    return lambda: any(r.get("generation") == g for r in rundir.read_jsonl(run_dir / rundir.HISTORY))


def best(run_dir: Path) -> tuple[str, float, list]:
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert result["finished"]
    return result["best_genotype"], result["best_fitness"], result["top_k"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[tuple, list[dict]]:
    """The uninterrupted CLI run with the same seed and settings: its best and its history."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = subprocess_cli(*cli_search_args(run_dir), cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    return best(run_dir), load_history(run_dir)


def assert_resumes_to_the_reference(run_dir: Path, reference) -> None:
    rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)  # the previous complete version is there and loads
    done = subprocess_cli("search", "--resume", str(run_dir), "--quiet", cwd=run_dir.parent)
    assert done.returncode == 0, done.stderr
    ref_best, ref_rows = reference
    assert best(run_dir) == ref_best
    rows = load_history(run_dir)
    assert [r["generation"] for r in rows] == list(range(CLI_SETTINGS["generations"] + 1))
    assert [r["fitness"] for r in rows] == [r["fitness"] for r in ref_rows]
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # no leftovers of torn writes
    # events.jsonl was cut back to the checkpoint, as history.jsonl is: every training step logged once
    steps = [(e["phase"], e["generation"], e["step"]) for e in rundir.read_jsonl(run_dir / rundir.EVENTS)
             if e.get("type") == "train_step"]
    c = CLI_SETTINGS
    assert len(steps) == len(set(steps)) == c["warmup_steps"] + c["generations"] * c["finetune_steps"]


@pytest.mark.parametrize("moment", ["first-warmup-checkpoint", "generation-0", "generation-1"])
def test_kill_9_at_any_moment_then_resume_ends_like_the_uninterrupted_run(moment, tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    if moment == "first-warmup-checkpoint":
        wait_for(lambda: (run_dir / rundir.CHECKPOINT).exists(), proc, "checkpoint during warm-up")
    else:
        wait_for(has_generation(run_dir, int(moment[-1])), proc, f"{moment} in history.jsonl")
    assert proc.poll() is None, "the search finished before it could be killed"
    proc.kill()  # SIGKILL: no handler, no cleanup
    assert proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    proc.stderr.close()
    assert_resumes_to_the_reference(run_dir, reference)


def test_sigint_stops_after_a_consistent_checkpoint_and_resumes_to_the_same_result(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    wait_for(has_generation(run_dir, 0), proc, "generation 0 in history.jsonl")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=DEADLINE_S) == 130
    err = proc.stderr.read()
    proc.stderr.close()
    assert "Traceback" not in err
    state = rundir.load_checkpoint(run_dir / rundir.CHECKPOINT)
    result = json.loads((run_dir / rundir.RESULT).read_text())
    assert not result["finished"] and result["generation"] == state["generation"] >= 0
    assert [r["generation"] for r in load_history(run_dir)] == list(range(state["generation"] + 1))
    assert_resumes_to_the_reference(run_dir, reference)


@pytest.mark.parametrize("cut", ["empty", "100-bytes", "half", "last-10-bytes", "garbage"])
def test_a_truncated_or_corrupt_checkpoint_is_an_error_naming_the_file(run_copy, cut, capsys):
    path = run_copy / rundir.CHECKPOINT
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "100-bytes": data[:100], "half": data[: len(data) // 2],
                      "last-10-bytes": data[:-10], "garbage": b"\x00garbage" * 512}[cut])
    before = snapshot(run_copy)
    with pytest.raises(CheckpointError, match="truncated(,| or) corrupt") as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    code, _, err = run_cli(["search", "--resume", str(run_copy)], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1
    assert snapshot(run_copy) == before


def test_an_interrupted_write_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "result.json"
    rundir.write_json(path, {"version": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", disk_full)
    with pytest.raises(CheckpointError, match="cannot write .*result.json: No space left on device"):
        rundir.write_json(path, {"version": 2})
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left behind


def test_a_line_torn_by_a_crash_does_not_hide_the_lines_appended_after_it(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text('{"type": "a"}\n{"type": "tor')  # killed in the middle of a line
    appender = rundir.JsonlAppender(log)
    appender({"type": "b"})
    appender.close()
    assert rundir.read_jsonl(log) == [{"type": "a"}, {"type": "b"}]


# --- 3. hostile files --------------------------------------------------------------------------------------
class Exploit:
    """Pickles as a call of os.system: loading it unsafely would create MARKER."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_checkpoint_carrying_code_is_refused_without_running_it(run_copy, tmp_path, how, capsys):
    marker = tmp_path / "MARKER"
    path = run_copy / rundir.CHECKPOINT
    state = {"format": "nasviz-checkpoint", "version": 1, "config": tiny().to_dict(), "payload": Exploit(marker)}
    if how == "torch.save":
        torch.save(state, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=2)  # torch's legacy format
    with pytest.raises(CheckpointError, match="refused to load it, nothing in it was run") as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "weights_only` set to `False`" not in str(info.value)
    assert "not a safe nasviz checkpoint: it refers to code (Trying to load unsupported GLOBAL posix.system" \
        in str(info.value)
    with pytest.raises(CheckpointError, match="refused to load it"):
        rundir.load_checkpoint(path)
    code, _, err = run_cli(["search", "--resume", str(run_copy)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(path) in err
    assert not marker.exists()


def test_a_checkpoint_process_refuses_code_too(run_copy, tmp_path):
    torch.save({"format": "nasviz-checkpoint", "version": 1, "payload": Exploit(tmp_path / "MARKER")},
               run_copy / rundir.CHECKPOINT)
    done = subprocess_cli("search", "--resume", str(run_copy), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "MARKER").exists()


def test_genotype_text_inside_a_checkpoint_or_result_file_is_parsed_not_run(run_copy, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    payload = f"__import__('os').system('touch {marker}')"
    path = run_copy / rundir.CHECKPOINT
    state = rundir.load_checkpoint(path)
    state["population"] = [payload] * len(state["population"])
    torch.save(state, path)  # a safe pickle, hostile text
    with pytest.raises(CheckpointError, match="cannot be resumed: genotype text"):
        Search.resume(run_copy)
    result = json.loads((run_copy / rundir.RESULT).read_text())
    (run_copy / rundir.RESULT).write_text(json.dumps({**result, "best_genotype": cells(payload)}))
    code, _, err = run_cli(["info", "--genotype", str(run_copy)], capsys)
    assert code == 2 and "which is not allowed" in err
    assert not marker.exists()


def test_a_run_writes_only_inside_its_directory(gen1_run):
    base = gen1_run.parent  # the run was made with base/cwd as the working directory
    assert sorted(p.relative_to(base).as_posix() for p in base.rglob("*")) == sorted(
        ["cwd", "gen1"]
        + [f"gen1/{name}" for name in (rundir.CONFIG, rundir.HISTORY, rundir.EVENTS, rundir.RESULT, rundir.CHECKPOINT,
                                       rundir.LOCK)]
    )


def test_symbolic_links_in_a_run_directory_are_never_written_through(run_copy, tmp_path):
    outside = {name: tmp_path / f"outside-{name}" for name in (rundir.EVENTS, rundir.HISTORY, rundir.RESULT)}
    for name, target in outside.items():
        target.write_text("precious\n")
        (run_copy / name).unlink()
        (run_copy / name).symlink_to(target)
    # refused before anything is written: for the links, or for the history they hide (read as missing)
    with pytest.raises(CheckpointError, match="events.jsonl is a symbolic link|history.jsonl lacks generation"):
        Search.resume(run_copy)
    assert all(target.read_text() == "precious\n" for target in outside.values())
    # a new run refuses a directory whose history is a (dangling) link instead of appending through it
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / rundir.HISTORY).symlink_to(tmp_path / "nowhere.jsonl")
    with pytest.raises(CheckpointError, match="already holds a search run"):
        Search(tiny(), tmp_path / "fresh")
    assert not (tmp_path / "nowhere.jsonl").exists()


# --- 4. diverging training -----------------------------------------------------------------------------------
@pytest.fixture
def nan_batches(monkeypatch):
    """Make every training batch NaN (the engine's and from-scratch training's stream alike)."""
    original = BatchStream.next

    def poisoned(self):
        x, y = original(self)
        return torch.full_like(x, float("nan")), y

    monkeypatch.setattr(BatchStream, "next", poisoned)
    return monkeypatch


def test_a_nan_loss_in_fine_tuning_names_step_and_lr_and_keeps_the_last_checkpoint(run_copy, nan_batches):
    files = {name: (run_copy / name).read_bytes() for name in (rundir.CHECKPOINT, rundir.RESULT, rundir.HISTORY)}
    search = Search.resume(run_copy)
    steps = search.steps
    with pytest.raises(DivergedError) as info:
        search.step()
    message = str(info.value)
    assert f"finetune diverged: loss is nan at step {steps} with learning rate 0.05" in message
    assert str(run_copy / rundir.CHECKPOINT) in message and "\n" not in message
    assert {name: (run_copy / name).read_bytes() for name in files} == files
    nan_batches.undo()  # with good batches again, the last good checkpoint resumes and finishes
    result = Search.resume(run_copy).run()
    assert result["finished"] and result["generation"] == 2


def test_a_huge_learning_rate_diverges_with_an_error_and_the_files_stay(run_copy):
    files = {name: (run_copy / name).read_bytes() for name in (rundir.CHECKPOINT, rundir.RESULT)}
    search = Search.resume(run_copy, {"lr": 1e6, "finetune_steps": 8}, force=True)  # the largest rate allowed
    with pytest.raises(DivergedError, match=r"finetune diverged: .* at step \d+ with learning rate 1e\+06"):
        search.step()
    assert {name: (run_copy / name).read_bytes() for name in files} == files
    rundir.load_checkpoint(run_copy / rundir.CHECKPOINT)


def test_a_nan_loss_in_warm_up_stops_before_any_checkpoint(tmp_path, nan_batches):
    search = Search(tiny(), tmp_path / "r")
    with pytest.raises(DivergedError, match="warmup diverged: loss is nan at step 0 with learning rate 0.05"):
        search.run()
    assert not (tmp_path / "r" / rundir.CHECKPOINT).exists()


@pytest.mark.parametrize("where", ["new", "mine"])
def test_a_failed_training_leaves_nothing_behind(where, ctx, nan_batches, capsys):
    out = Path(ctx["out" if where == "new" else "mine"])
    before = everything(out) if out.exists() else None
    code, _, err = run_cli(["train", "--genotype", "DARTS_V2", "--epochs", "1", "--channels", "4", "--layers", "3",
                            "--batch-size", "8", "--train-size", "16", "--test-size", "8", "--out", str(out),
                            "--quiet"], capsys)
    assert code == 2 and "training diverged: loss is nan" in err and len(err.strip().splitlines()) == 1, err
    assert (not out.exists()) if where == "new" else everything(out) == before  # not even the lock file


def test_a_nan_loss_in_final_training_names_step_and_lr(nan_batches):
    g = torch.Generator().manual_seed(0)
    data = ImageData("tiny", torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=g),
                     torch.arange(16) % 2, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.arange(4) % 2,
                     ["a", "b"], (0.5,), (0.25,), "memory", True)
    config = ScratchConfig(epochs=1, channels=4, layers=3, batch_size=8, cutout=0)
    with pytest.raises(DivergedError, match="training diverged: loss is nan at step 0 with learning rate 0.025"):
        train_from_scratch(Genotype.parse("DARTS_V2"), data, config, progress=False)


# --- 5. one writer per run directory (issue 16.1) ------------------------------------------------------------
def busy_message(pid: int) -> str:
    return f"is in use by another nasviz process (pid {pid}"


def busy_pattern(pid: int) -> str:
    return re.escape(busy_message(pid))


def test_a_second_writer_is_refused_naming_the_first_and_kill_9_leaves_no_stale_lock(tmp_path, reference, capsys):
    run_dir = tmp_path / "run"
    proc = start_search(run_dir)
    wait_for(lambda: (run_dir / rundir.CHECKPOINT).exists(), proc, "the first checkpoint")
    assert proc.poll() is None, "the search finished before a second writer could try"
    # a new search into the same folder and a resume of it, from the command line and from Python
    for argv in (cli_search_args(run_dir), ["search", "--resume", str(run_dir), "--quiet"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and busy_message(proc.pid) in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(CheckpointError, match=busy_pattern(proc.pid)) as info:
        Search.resume(run_dir)
    assert info.value.pid == proc.pid
    with pytest.raises(CheckpointError, match=busy_pattern(proc.pid)):
        Search(tiny(), run_dir)
    proc.kill()  # the kernel drops the lock of a process killed with SIGKILL
    assert proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    proc.stderr.close()
    assert_resumes_to_the_reference(run_dir, reference)  # no stale lock: the resume runs, to the same end


def test_two_searches_started_together_into_one_folder_one_writes_the_other_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "nasviz", *cli_search_args(run_dir)[:-1]], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((p.wait(timeout=DEADLINE_S), p.stderr.read()) for p in procs)
    for p in procs:
        p.stderr.close()
    (ok, _), (refused, err) = outcomes
    assert (ok, refused) == (0, 2), outcomes
    assert "is in use by another nasviz process (pid" in err and len(err.strip().splitlines()) == 1, err
    assert [r["generation"] for r in load_history(run_dir)] == list(range(CLI_SETTINGS["generations"] + 1))


CLAIM = ("import sys; from nasviz.notebooks import {fn}; print('CLAIMED', {fn}(sys.argv[1]), flush=True); "
         "sys.stdin.read()")  # hold the claim until told to let go


def claimed(proc: subprocess.Popen) -> Path:
    """The folder a CLAIM process got (the lines before it say why `out` was not used)."""
    for line in proc.stdout:
        if line.startswith("CLAIMED "):
            return Path(line.removeprefix("CLAIMED ").strip())
    raise AssertionError(f"no folder claimed: {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.parametrize("fn", ["fresh_run_dir", "fresh_folder"])
def test_notebooks_asking_for_a_fresh_folder_at_once_get_one_each(tmp_path, fn):
    """The batch case `-p out SHARED --jobs N`: each process claims (creates and locks) a different folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIM.format(fn=fn), str(tmp_path / "shared")], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        folders = [claimed(p) for p in procs]
    finally:
        for p in procs:
            p.communicate("", timeout=DEADLINE_S)
    assert len(set(folders)) == 3 and all(f.is_dir() and f.parent == tmp_path for f in folders), folders
    assert tmp_path / "shared" in folders


def test_a_fresh_folder_is_never_one_another_process_writes_or_one_holding_files(tmp_path, capsys):
    from nasviz import notebooks as nv

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", CLAIM.format(fn="fresh_run_dir"), str(tmp_path / "busy")],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert claimed(holder) == tmp_path / "busy"
        elsewhere = nv.fresh_run_dir(tmp_path / "busy")
        assert elsewhere != tmp_path / "busy" and f"is in use by another process (pid {holder.pid})" in \
            capsys.readouterr().out
    finally:
        holder.communicate("", timeout=DEADLINE_S)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    assert nv.fresh_run_dir(tmp_path / "mine") != tmp_path / "mine"
    assert (tmp_path / "mine" / "config.json").read_text() == "{}"
    with pytest.raises(NasvizError, match="is blank"):
        nv.fresh_folder("  ")


def test_in_one_process_the_newest_search_writes_and_an_older_one_is_refused(tmp_path):
    run_dir = tmp_path / "r"
    first = Search(tiny(), run_dir)
    first.step()  # warm-up and generation 0
    first.close()  # lets go of the lock ...
    first.step()  # ... and takes it again to write: no one else wrote in between
    assert first.generation == 1
    second = Search.resume(run_dir)  # takes over
    with pytest.raises(CheckpointError, match="another search wrote .* after this one"):
        first.step()
    assert second.run()["finished"]
    assert [r["generation"] for r in load_history(run_dir)] == [0, 1, 2]


# --- 6. batch folders (16.2) -----------------------------------------------------------------------------------
@pytest.mark.parametrize("values, expected", [
    (["a/b", "a_b", "a b"], ["name=a_b~", "name=a_b", "name=a_b~"]),
    (["A", "a"], ["name=A", "name=a-2"]),  # one folder on a file system that ignores case
    (["x" * 300, "x" * 301], ["name=" + "x" * 100, "name=" + "x" * 100]),  # cut to a file system's length
])
def test_batch_point_folders_are_unique_even_where_names_clash(values, expected):
    from nasviz.headless.batch import MAX_NAME, point_names

    names = point_names([{"name": v} for v in values])
    assert len({n.casefold() for n in names}) == len(values)
    assert all(n.startswith(e) and len(n.encode()) <= MAX_NAME for n, e in zip(names, expected)), names


@pytest.mark.slow
def test_a_batch_whose_values_clash_after_sanitising_keeps_every_point(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('name = "x"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(name)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = tmp_path / "echo.ipynb"
    nbformat.write(nb, str(notebook))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nasviz", "batch", str(notebook), "--grid", "name=a/b,a_b,a b",
                           "--out", str(tmp_path / "sweep"), "--jobs", "2"], capture_output=True, text=True, env=env,
                          timeout=DEADLINE_S * 2, cwd=tmp_path)
    assert done.returncode == 0 and "3 ok, 0 failed" in done.stdout, done.stdout + done.stderr
    summary = json.loads((tmp_path / "sweep" / rundir.BATCH).read_text())
    assert sorted(p["parameters"]["name"] for p in summary["points"]) == ["a b", "a/b", "a_b"]
    assert len({p["folder"] for p in summary["points"]}) == 3
    for point in summary["points"]:  # batch.json points at the folder that holds that point's results
        folder = Path(point["folder"])
        assert json.loads((folder / rundir.PARAMETERS).read_text())["name"] == point["parameters"]["name"]
        executed = nbformat.read(str(folder / "echo.ipynb"), as_version=4)
        assert executed.cells[-1].outputs[0]["text"].strip() == point["parameters"]["name"]


# --- 7. checkpoints checked before a resume touches anything (16.8) ---------------------------------------------
def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(key, value)


DAMAGE: dict[str, Callable[[dict], None]] = {
    "generation-text": _set("generation", "1"),
    "generation-beyond-the-run": _set("generation", 99),
    "fitness-shorter-than-population": lambda s: s.__setitem__("fitness", s["fitness"][:-1]),
    "params-floats": lambda s: s.__setitem__("params", [0.5] * len(s["params"])),
    "population-text": _set("population", "not a list"),
    "seen-numbers": _set("seen", [1, 2]),
    "warmup-log-uneven": lambda s: s["warmup_log"].__setitem__("paths", ["a path without its loss"]),
    "no-rng": lambda s: s.pop("rng"),
    "rng-torch-list": lambda s: s["rng"].__setitem__("torch", [1, 2, 3]),
    "stream-position-text": lambda s: s["stream"].__setitem__("position", "3"),
    "stream-order-cut": lambda s: s["stream"].__setitem__("perm", s["stream"]["perm"][:3]),
    "optimizer-momentum-of-another-shape": lambda s: next(iter(s["optimizer"]["state"].values())).__setitem__(
        "momentum_buffer", torch.zeros(3)),
    "optimizer-lr-text": lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "fast"),
    "supernet-list": _set("supernet", [1]),
    "no-optimizer": lambda s: s.pop("optimizer"),
    "wall-time-negative": _set("wall_time_s", -1.0),
    "from-another-run": _set("run_id", "0" * 32),
    "another-population": lambda s: s.__setitem__("population", [str(Genotype.parse("DARTS_V2"))] * 2),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_checkpoint_of_the_wrong_structure_or_another_run_is_refused_before_anything_changes(run_copy, damage,
                                                                                               capsys):
    path = run_copy / rundir.CHECKPOINT
    state = rundir.load_checkpoint(path)
    DAMAGE[damage](state)
    torch.save(state, path)
    before = snapshot(run_copy)
    with pytest.raises(CheckpointError) as info:
        Search.resume(run_copy)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert snapshot(run_copy) == before
    code, _, err = run_cli(["search", "--resume", str(run_copy), "--quiet"], capsys)
    assert code == 2 and str(path) in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(run_copy) == before


# --- 8. after a resume, config.json and result.json agree (16.9) ------------------------------------------------
@pytest.mark.parametrize("generations", [1, 3])
def test_after_any_resume_config_and_result_agree(run_copy, generations, capsys):
    code, out, err = run_cli(["search", "--resume", str(run_copy), "--set", f"generations={generations}"]
                             + (["--quiet"] if generations == 3 else []), capsys)
    assert code == 0, err
    config, result = (json.loads((run_copy / name).read_text()) for name in (rundir.CONFIG, rundir.RESULT))
    assert config["generations"] == result["generations"] == generations
    assert result["finished"] and result["generation"] == generations
    if generations == 1:  # nothing left to run: it says finished, and so does result.json
        assert "search finished" in out


def test_a_resume_that_has_not_run_yet_already_agrees(run_copy):
    Search.resume(run_copy, {"generations": 5})
    config, result = (json.loads((run_copy / name).read_text()) for name in (rundir.CONFIG, rundir.RESULT))
    assert config["generations"] == result["generations"] == 5 and not result["finished"]


# --- 9. readers answer a partial run with what it has, a damaged file with one line (16.7) -----------------------
def _rewrite(name: str, change: Callable[[str], str]) -> Callable[[Path], None]:
    return lambda run: (run / name).write_text(change((run / name).read_text()))


def _first_row(change: Callable[[dict], Any]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        lines = text.splitlines()
        return "\n".join([json.dumps(change(json.loads(lines[0])))] + lines[1:]) + "\n"
    return apply


READ = [["report", "{run}"]]
GENOTYPE = [["info", "--genotype", "{run}"], ["render", "--genotype", "{run}", "--out", "{run}/cells.dot"]]
DAMAGED: dict[str, tuple[Callable[[Path], None], list[list[str]], str]] = {
    "history-line-not-an-object": (_rewrite(rundir.HISTORY, lambda t: "[1, 2]\n" + t), READ,
                                   "history.jsonl is damaged: row 1 is list, not an object"),
    "history-row-lacks-a-key": (_rewrite(rundir.HISTORY, _first_row(lambda r: {k: v for k, v in r.items()
                                                                               if k != "best"})), READ,
                                "history.jsonl is damaged: row 1 lacks 'best'"),
    "history-row-wrong-type": (_rewrite(rundir.HISTORY, _first_row(lambda r: {**r, "fitness": ["high"]})), READ,
                               "history.jsonl is damaged: row 1 has 'high' in fitness"),
    "history-individual-damaged": (_rewrite(rundir.HISTORY, _first_row(lambda r: {**r, "individuals": [None]})),
                                   READ, "history.jsonl is damaged: row 1 has individual 0"),
    "history-null": (_rewrite(rundir.HISTORY, lambda t: "null\n"), READ, "row 1 is NoneType, not an object"),
    "result-truncated": (_rewrite(rundir.RESULT, lambda t: t[: len(t) // 2]), GENOTYPE,
                         "result.json is not valid JSON"),
    "result-a-list": (_rewrite(rundir.RESULT, lambda t: "[]"), READ + GENOTYPE,
                      "result.json is damaged: it holds list [], not a JSON object"),
    "result-null": (_rewrite(rundir.RESULT, lambda t: "null"), GENOTYPE, "result.json is damaged: it holds NoneType"),
    "result-best-a-number": (_rewrite(rundir.RESULT, lambda t: '{"best_genotype": 5}'), GENOTYPE,
                             "result.json is damaged: best_genotype=5 is not genotype text"),
    "partial-no-generation-yet": (_rewrite(rundir.HISTORY, lambda t: ""), READ, "nothing to report yet"),
    "partial-warming-up": (lambda run: [(run / n).unlink() for n in (rundir.RESULT, rundir.HISTORY)], GENOTYPE,
                           "has no best genotype yet"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_readers_of_a_damaged_or_partial_run_answer_in_one_line_naming_the_file(run_copy, case, capsys):
    damage, commands, fragment = DAMAGED[case]
    damage(run_copy)
    for argv in commands:
        code, out, err = run_cli([a.format(run=run_copy) for a in argv], capsys)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, (argv, err)
        assert "Traceback" not in err
    with pytest.raises(NasvizError, match=re.escape(fragment)):  # and the same through the API
        if commands is READ or commands == READ + GENOTYPE:
            from nasviz.viz.cli import cmd_report

            cmd_report(argparse.Namespace(run_dir=str(run_copy)))
        else:
            rundir.best_genotype(run_copy)


@pytest.mark.parametrize("result", ["missing", "truncated"])
def test_a_partial_run_is_reported_with_what_it_has(run_copy, result, capsys):
    path = run_copy / rundir.RESULT
    if result == "missing":  # e.g. killed between its first history row and its first result
        path.unlink()
    else:  # result.json is written atomically: torn, it is damaged; the report leaves its facts out and says so
        path.write_text(path.read_text()[:40])
    code, out, err = run_cli(["report", str(run_copy)], capsys)
    assert code == 0, err
    assert (run_copy / rundir.REPORT).is_file()
    assert err == ("" if result == "missing" else f"nasviz: note: {path} is not JSON (damaged); the report leaves "
                   "out its facts\n")


def test_a_run_without_result_json_yet_gives_its_last_generations_best(run_copy, capsys):
    (run_copy / rundir.RESULT).unlink()  # killed after a history row, before the result of that checkpoint
    code, out, err = run_cli(["info", "--genotype", str(run_copy), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["genotype"] == load_history(run_copy)[-1]["best"]["genotype"]


def test_a_list_of_runs_leaves_a_damaged_one_out_and_reads_the_others(gen1_run, tmp_path, capsys):
    from nasviz.notebooks import find_runs

    shutil.copytree(gen1_run, tmp_path / "runs" / "good")
    shutil.copytree(gen1_run, tmp_path / "runs" / "bad")
    (tmp_path / "runs" / "bad" / rundir.RESULT).write_text("[]")
    assert [r["name"] for r in find_runs(tmp_path / "runs")] == ["good"]
    assert "left out" in capsys.readouterr().out


# --- 10. presets vs small datasets (16.6) ------------------------------------------------------------------------
@pytest.fixture
def small_folder(tmp_path) -> Path:
    """60 8x8 grayscale PNGs in two classes: 48 for training, 12 held out."""
    from PIL import Image

    root = tmp_path / "small"
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(30):
            Image.new("L", (8, 8), color=(7 * i + 100 * c) % 256).save(root / f"class{c}" / f"{i}.png")
    return root


def test_a_presets_sizes_shrink_to_a_small_dataset_and_explicit_ones_are_refused(small_folder, image_folder, tmp_path,
                                                                                  caplog):
    dataset = f"imagefolder:{small_folder}"
    fast = dict(warmup_steps=2, population=2, generations=0, top_k=1, eval_batch_size=16)
    search = Search(SearchConfig.from_preset("smoke", dataset=dataset, **fast))
    assert (search.config.weight_images, search.config.fitness_images) == (44, 4)  # 2,000 + 200 scaled to 48
    assert "has 48 training images, fewer than the smoke preset's weight_images=2000 + fitness_images=200: using " \
           "weight_images=44, fitness_images=4" in caplog.text
    with pytest.raises(ConfigError, match="fitness_images=100 is more than the 48 training images"):
        Search(SearchConfig.from_preset("smoke", dataset=dataset, fitness_images=100, **fast))
    with pytest.raises(ConfigError, match="weight_images=48 leaves none of .*'s 48 training images to measure fitness"):
        Search(SearchConfig.from_preset("smoke", dataset=dataset, weight_images=48, **fast))
    explicit = Search(SearchConfig.from_preset("smoke", dataset=dataset, weight_images=40, **fast))
    assert (explicit.config.weight_images, explicit.config.fitness_images) == (40, 8)  # the preset's part gives way
    tiny_set = Search(SearchConfig.from_preset("smoke", dataset=f"imagefolder:{image_folder}", **fast)).config
    assert (tiny_set.weight_images, tiny_set.fitness_images, tiny_set.batch_size) == (7, 1, 7)  # 8 images: the batch
    with pytest.raises(ConfigError, match="too few for a batch of batch_size=16"):  # ... unless set explicitly
        Search(SearchConfig.from_preset("smoke", dataset=f"imagefolder:{image_folder}", batch_size=16, **fast))
    # the command line: the search runs, and config.json records the sizes used
    out = tmp_path / "run"
    sets = [a for k, v in fast.items() for a in ("--set", f"{k}={v}")]
    done = subprocess_cli("search", "--preset", "smoke", "--dataset", dataset, *sets, "--out", str(out), "--quiet",
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "using weight_images=44, fitness_images=4" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    config = json.loads((out / rundir.CONFIG).read_text())
    assert (config["weight_images"], config["fitness_images"], config["preset"]) == (44, 4, "smoke")
    assert Search.resume(out).config.fitness_images == 4  # and a resume keeps them


# --- 11. image folders (16.10) ----------------------------------------------------------------------------------
def test_a_truncated_image_is_named_and_stops_the_load(image_folder, tmp_path, capsys):
    from PIL import Image

    from nasviz.data.loading import load_dataset

    bad = image_folder / "class1" / "big.png"
    Image.effect_noise((64, 64), 64).save(bad)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(NasvizError, match=f"cannot read image {re.escape(str(bad))}: .*truncated"):
        load_dataset(f"imagefolder:{image_folder}")
    code, _, err = run_cli(["data", f"imagefolder:{image_folder}"], capsys)
    assert code == 2 and str(bad) in err and len(err.strip().splitlines()) == 1


def test_images_of_other_bit_depths_are_scaled_not_clipped(tmp_path):
    import numpy as np
    from PIL import Image

    from nasviz.data.loading import load_dataset

    for c, value in enumerate((0x2000, 0x8080)):  # 16-bit grays: 1/8 and about 1/2 of full scale
        (tmp_path / "deep" / f"c{c}").mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), value, dtype=np.uint16)).save(tmp_path / "deep" / f"c{c}" / f"{i}.png")
    data = load_dataset(f"imagefolder:{tmp_path / 'deep'}")
    seen = set(torch.cat([data.train_images, data.test_images]).unique().tolist())
    assert seen == {round(0x2000 / 257), round(0x8080 / 257)} == {32, 128}


def test_a_folder_with_one_class_is_refused(tmp_path, capsys):
    from PIL import Image

    from nasviz.data.loading import load_dataset

    (tmp_path / "one" / "cats").mkdir(parents=True)
    for i in range(4):
        Image.new("L", (4, 4), color=i).save(tmp_path / "one" / "cats" / f"{i}.png")
    with pytest.raises(NasvizError, match="training images of 1 class \\(cats\\); at least 2 classes are needed"):
        load_dataset(f"imagefolder:{tmp_path / 'one'}")
    out = tmp_path / "run"
    code, _, err = run_cli(["search", "--preset", "smoke", "--dataset", f"imagefolder:{tmp_path / 'one'}", "--out",
                            str(out)], capsys)
    assert code == 2 and "at least 2 classes" in err and not out.exists()


# --- 12. notebook parameters as papermill hands them over (16.11) ------------------------------------------------
@pytest.mark.parametrize("value, expected", [({"a": 1}, {"a": 1}), ('{"population": -1}', {"population": -1}),
                                             (None, {})])
def test_a_dict_parameter_may_come_as_json_text(value, expected):
    from nasviz.notebooks import as_dict

    assert as_dict("overrides", value) == expected


@pytest.mark.parametrize("call, fragment", [
    (lambda nv: nv.as_dict("overrides", "population=3"), "overrides='population=3' is not a dict; allowed: a dict"),
    (lambda nv: nv.as_dict("overrides", "[1]"), "overrides=[1] is not a dict"),
    (lambda nv: nv.as_list("variants", ""), "variants=[''] is not allowed"),
    (lambda nv: nv.as_int("kendall_archs", 10**9, 2, 200), "kendall_archs=1000000000 is out of range; allowed: an "
                                                           "integer in 2..200"),
    (lambda nv: nv.as_int("table_searches", "many", 1, 9), "table_searches='many' has the wrong type"),
])
def test_bad_notebook_parameters_are_one_line_errors_naming_them(call, fragment):
    from nasviz import notebooks as nv

    with pytest.raises(ConfigError) as info:
        call(nv)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert nv.as_list("variants", "ga, random") == ["ga", "random"] and nv.as_int("n", "3", 1, 5) == 3


@pytest.mark.slow
def test_papermill_p_overrides_as_json_text_reaches_the_search(tmp_path):
    from nasviz.headless.execute import execute

    status = execute(Path(MAIN_NB), tmp_path / "out.ipynb", {"preset": "smoke", "overrides": '{"population": -1}',
                                                              "out": str(tmp_path / "run"), "live": False})
    assert status["status"] == "failed" and "population=-1 is out of range" in status["error"], status
    assert not (tmp_path / "run").exists()
