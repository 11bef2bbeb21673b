"""Reliability and safety: data: presets against small datasets, image folders (truncated images, bit depths, one
class)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import reliability_support as shared
import torch
from reliability_support import png_classes, run_cli, subprocess_cli

from nasviz.errors import ConfigError, NasvizError
from nasviz.runs import rundir
from nasviz.search.config import SearchConfig
from nasviz.search.loop import Search

# the shared fixtures (`reliability_support`) this file's tests use
image_folder = shared.image_folder


# --- 10. presets vs small datasets (16.6) ------------------------------------------------------------------------
@pytest.fixture
def small_folder(tmp_path) -> Path:
    """60 8x8 grayscale PNGs in two classes: 48 for training, 12 held out."""
    return png_classes(tmp_path / "small", 30, lambda i, c: (7 * i + 100 * c) % 256)


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
