"""Reliability and safety: bad input (one table of bad settings and values, through the Python API, the command line and
a real process; notebook parameters as papermill hands them over)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import reliability_support as shared
import torch
from reliability_support import (
    GOOD,
    MAIN_NB,
    PAYLOAD,
    USERS,
    cells,
    everything,
    pairs,
    run_cli,
    snapshot,
    subprocess_cli,
    tiny,
    with_edge,
)

from nasviz.deploy.export import export_model
from nasviz.deploy.predict import image_files
from nasviz.errors import ConfigError, NasvizError
from nasviz.runs import rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search
from nasviz.space.genotypes import Genotype
from nasviz.train.scratch import ScratchConfig

# the shared fixtures (`reliability_support`) this file's tests use
ctx = shared.ctx
gen1_run = shared.gen1_run
image_folder = shared.image_folder


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
