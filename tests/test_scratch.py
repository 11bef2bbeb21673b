"""From-scratch training (nasviz.train.scratch): real Fashion-MNIST runs, size caps, and ScratchConfig's settings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nasviz.data import loading as nasviz_data
from nasviz.errors import ConfigError
from nasviz.space.genotypes import FIXTURES
from nasviz.space.network import EvalNetwork, count_params, describe
from nasviz.train.schedule import cosine
from nasviz.train.scratch import ScratchConfig, train_from_scratch

torch.set_num_threads(1)  # the machine's two cores are shared
DARTS_V2 = FIXTURES["DARTS_V2"]
HAS_DEBIAN = all(
    (Path(nasviz_data.DEBIAN_FASHION_MNIST) / f"{f}.gz").is_file() for f in nasviz_data.FASHION_MNIST_FILES
)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """Real Fashion-MNIST, extracted from Debian's files into a fresh root (once for the module)."""
    if not HAS_DEBIAN:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    return nasviz_data.load_dataset("fashion-mnist", root=tmp_path_factory.mktemp("fm"), download=False)


# ------------------------------------------------------------------------------------------------ from scratch


TINY = {"epochs": 3, "channels": 4, "layers": 3, "batch_size": 32, "train_size": 320, "test_size": 200,
        "device": "cpu", "seed": 0}


def test_train_from_scratch_on_real_fashion_mnist(fashion):
    config = ScratchConfig.from_settings(TINY)
    epochs = []
    result = train_from_scratch(DARTS_V2, fashion, config, on_epoch=epochs.append, progress=False)
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["test_accuracy"] * 200 == round(result["test_accuracy"] * 200)
    assert result["test_images"] == 200 and result["train_images"] == 320
    assert result["dataset"] == "fashion-mnist" and result["device"] == "cpu"
    assert result["genotype"] == str(DARTS_V2)
    reference = EvalNetwork(DARTS_V2, 1, 10, 4, 3)
    assert result["params"] == count_params(reference) == describe(DARTS_V2, (1, 28, 28), 10, 4, 3)["params"]
    assert result["flops"] == describe(DARTS_V2, (1, 28, 28), 10, 4, 3)["flops"] > 0
    assert result["config"]["epochs"] == 3 and result["wall_time_s"] > 0
    history = result["history"]
    assert epochs == history and [h["epoch"] for h in history] == [0, 1, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"], history
    assert all(0 <= h["train_accuracy"] <= 1 for h in history)
    # the default schedule: cosine stepped every batch, from lr down to 0 after the last of the 3 x 10 steps
    assert result["config"]["lr_schedule"] == "per-batch"
    assert history[0]["lr_first"] == config.lr
    assert history[-1]["lr_last"] == cosine(config.lr, 29, 30) < 0.01 * config.lr
    assert all(h["lr_first"] > h["lr_last"] for h in history)
    assert all(a["lr_last"] > b["lr_first"] for a, b in zip(history, history[1:]))


def test_per_epoch_schedule_is_the_old_one_and_runs_repeat(fashion):
    """lr_schedule=per-epoch is nasviz's schedule before the per-batch one: CosineAnnealingLR stepped once an epoch
    (a 3-epoch run trains its last epoch at 25 % of lr). The same seed gives the same run (on the CPU): a 1-epoch run
    repeats the first epoch exactly (the schedule and the drop-path ramp both start at the same values)."""
    config = ScratchConfig.from_settings({**TINY, "lr_schedule": "per-epoch"})
    history = train_from_scratch(DARTS_V2, fashion, config, progress=False)["history"]
    for epoch, h in enumerate(history):
        assert h["lr_first"] == h["lr_last"] == pytest.approx(0.5 * config.lr * (1 + math.cos(math.pi * epoch / 3)))
    assert history[2]["lr_first"] == pytest.approx(0.25 * config.lr)
    again = train_from_scratch(DARTS_V2, fashion, ScratchConfig.from_settings({**TINY, "lr_schedule": "per-epoch",
                                                                               "epochs": 1}), progress=False)
    assert again["history"] == history[:1]
    per_batch = train_from_scratch(DARTS_V2, fashion, ScratchConfig.from_settings({**TINY, "epochs": 1}),
                                   progress=False)
    assert per_batch["history"][0]["train_loss"] != history[0]["train_loss"]  # the schedules differ in epoch 0


def test_train_from_scratch_caps_sizes_at_the_dataset(fashion):
    small = nasviz_data.ImageData(
        name="tiny", train_images=fashion.train_images[:40], train_labels=fashion.train_labels[:40],
        test_images=fashion.test_images[:30], test_labels=fashion.test_labels[:30], classes=fashion.classes,
        mean=fashion.mean, std=fashion.std, source="test", flip=True,
    )
    config = ScratchConfig.from_settings({**TINY, "epochs": 1, "batch_size": 64, "train_size": None,
                                          "test_size": 1000, "drop_path": 0.0, "cutout": 0})
    result = train_from_scratch(FIXTURES["PC_DARTS"], small, config, progress=False)
    assert result["train_images"] == 40 and result["test_images"] == 30
    assert len(result["history"]) == 1


# ------------------------------------------------------------------------------------------------ ScratchConfig


def test_scratch_config_defaults_are_the_darts_protocol():
    c = ScratchConfig()
    assert (c.epochs, c.channels, c.layers, c.batch_size, c.lr, c.cutout, c.drop_path, c.auxiliary_weight) == (
        600, 36, 20, 96, 0.025, 16, 0.2, 0.4)
    assert ScratchConfig.from_settings({}) == c


def test_scratch_config_from_text():
    c = ScratchConfig.from_settings({"epochs": "2", "lr": "0.1", "train_size": "none", "test_size": "50",
                                     "drop_path": "0"})
    assert (c.epochs, c.lr, c.train_size, c.test_size, c.drop_path) == (2, 0.1, None, 50, 0.0)
    assert isinstance(c.lr, float) and isinstance(c.drop_path, float)
    assert ScratchConfig.from_settings({"lr": 1}).lr == 1.0


@pytest.mark.parametrize(
    "settings,fragments",
    [
        ({"epoch": 2}, ["'epoch'", "did you mean 'epochs'", "allowed"]),
        ({"learning_rate": 0.1}, ["'learning_rate'"]),
        ({"batchsize": 8}, ["did you mean 'batch_size'"]),
        ({"epochs": "two"}, ["epochs", "two"]),
        ({"epochs": 2.5}, ["epochs", "2.5"]),
        ({"epochs": True}, ["epochs", "True"]),
        ({"lr": "fast"}, ["lr", "fast"]),
        ({"device": 0}, ["device"]),
        ({"epochs": 0}, ["epochs=0", "out of range"]),
        ({"channels": -2}, ["channels=-2"]),
        ({"layers": 0}, ["layers=0"]),
        ({"batch_size": 0}, ["batch_size=0"]),
        ({"train_size": 0}, ["train_size=0"]),
        ({"test_size": -1}, ["test_size=-1"]),
        ({"channels": 5}, ["channels=5", "even"]),
        ({"channels": 4096}, ["channels=4096", "2..1024"]),
        ({"layers": 500}, ["layers=500", "1..100"]),
        ({"lr": float("inf")}, ["lr=inf", "finite"]),
        ({"lr": "nan"}, ["lr=nan", "finite"]),
        ({"drop_path": "nan"}, ["drop_path=nan"]),
        ({"lr": 0}, ["lr=0"]),
        ({"lr": -0.1}, ["lr=-0.1"]),
        ({"grad_clip": 0}, ["grad_clip=0"]),
        ({"drop_path": 1.0}, ["drop_path=1.0", "[0, 1)"]),
        ({"momentum": -0.5}, ["momentum=-0.5"]),
        ({"cutout": -1}, ["cutout"]),
        ({"weight_decay": -1e-4}, ["weight_decay"]),
        ({"lr_schedule": "per-step"}, ["unknown lr_schedule 'per-step'", "allowed: per-batch, per-epoch"]),
    ],
)
def test_scratch_config_errors(settings, fragments):
    with pytest.raises(ConfigError) as info:
        ScratchConfig.from_settings(settings)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
