"""Nothing waits for ever: a FIFO (or another non-regular file) where a run file, a build folder's rows or a model
file should be is refused in one line, never read (each command runs as a subprocess with a timeout, so a hang
fails the test instead of stalling it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from run_support import table_smoke_run

from nasviz.runs import rundir

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 600
"""Far beyond a refusal (a few seconds idle, over two minutes on a machine loaded 7x); only a hang reaches it."""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return table_smoke_run(tmp_path_factory.mktemp("fifo") / "run")


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def nasviz(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "nasviz", *args], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, cwd=ROOT)


def fifo_in_place_of(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def assert_refused(result: subprocess.CompletedProcess, path: Path) -> None:
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, result.stderr
    assert str(path) in err and "FIFO" in err and "not a regular file" in err, err


@pytest.mark.parametrize("name, argv", [
    (rundir.HISTORY, ["search", "--resume", "{run}", "--quiet"]),
    (rundir.RESULT, ["report", "{run}"]),
    (rundir.RESULT, ["info", "--genotype", "{run}"]),
    (rundir.CHECKPOINT, ["search", "--resume", "{run}", "--quiet"]),
])
def test_a_fifo_run_file_is_refused_in_one_line(run_copy, name, argv):
    fifo = fifo_in_place_of(run_copy / name)
    assert_refused(nasviz(*[a.replace("{run}", str(run_copy)) for a in argv]), fifo)
    assert (run_copy / name).is_fifo()  # left as it was


def test_a_fifo_rows_file_of_a_build_folder_is_refused(tmp_path):
    (tmp_path / "recipe.json").write_text(json.dumps({"space": "mini", "recipe": {}, "pilot": None}))
    fifo = fifo_in_place_of(tmp_path / "rows-0-of-1.jsonl")
    assert_refused(nasviz("table", "info", str(tmp_path)), fifo)


def test_a_fifo_model_file_is_refused(tmp_path):
    fifo = fifo_in_place_of(tmp_path / "model.pt")
    assert_refused(nasviz("export", "--model", str(fifo), "--format", "torchscript", "--out", str(tmp_path / "m.pt")),
                   fifo)


def test_a_fifo_lock_file_is_refused(run_copy):
    fifo = fifo_in_place_of(run_copy / ".nasviz.lock")
    result = nasviz("search", "--resume", str(run_copy), "--quiet")
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "not a regular file" in err, result.stderr
    assert str(fifo) in err


# --- image folders and dataset roots: the data layer reads regular files only (stop, as for an undecodable image)
def image_folder(root: Path, split: bool = False) -> Path:
    """A tiny image folder: 2 classes x 3 grey 8x8 PNGs (under train/ and test/ where `split`)."""
    from PIL import Image

    for part in ("train", "test") if split else ("",):
        for k, name in enumerate(("cat", "dog")):
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("L", (8, 8), color=40 * k + 10 * i).save(folder / f"{i}.png")
    return root


def assert_data_refused(result: subprocess.CompletedProcess, path: Path, kind: str) -> None:
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, result.stderr
    assert str(path) in err and kind in err and "not a regular file" in err, err


@pytest.mark.parametrize("where", ["cat/x.png", "dog/deeper/y.JPG", "test/dog/z.png"])
def test_a_fifo_named_like_an_image_stops_loading_an_image_folder_in_one_line(tmp_path, where):
    root = image_folder(tmp_path / "pics", split=where.startswith("test/"))
    fifo = root / where
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    assert_data_refused(nasviz("data", f"imagefolder:{root}"), fifo, "FIFO")
    assert fifo.is_fifo()  # left as it was


def test_a_broken_link_named_like_an_image_stops_loading_in_one_line(tmp_path):
    root = image_folder(tmp_path / "pics")
    link = root / "dog" / "gone.png"
    link.symlink_to(tmp_path / "nowhere.png")
    assert_data_refused(nasviz("data", f"imagefolder:{root}"), link, "broken symbolic link")


def test_a_fifo_behind_a_link_to_an_image_is_refused_and_other_files_are_ignored(tmp_path):
    root = image_folder(tmp_path / "pics")
    os.mkfifo(tmp_path / "pipe")
    (root / "cat" / "notes.fifo").symlink_to(tmp_path / "pipe")  # not named like an image: never opened
    result = nasviz("data", f"imagefolder:{root}", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["train"] + json.loads(result.stdout)["test"] == 6
    (root / "cat" / "linked.png").symlink_to(tmp_path / "pipe")
    assert_data_refused(nasviz("data", f"imagefolder:{root}"), root / "cat" / "linked.png", "FIFO")


def test_an_image_replaced_by_a_fifo_after_listing_is_refused_not_waited_on(tmp_path):
    from nasviz.data.loading import read_image
    from nasviz.errors import DataError

    fifo = tmp_path / "late.png"
    os.mkfifo(fifo)  # as if it became a FIFO between the folder's listing and the read: the open itself checks
    with pytest.raises(DataError, match="late.png is a FIFO"):
        read_image(fifo, "L", (8, 8))


@pytest.mark.parametrize("dataset, entry", [
    ("fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ("mnist", "MNIST/raw/t10k-labels-idx1-ubyte"),
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ("svhn", "train_32x32.mat"),
])
def test_a_fifo_in_a_dataset_root_is_refused_before_torchvision_reads_it(tmp_path, dataset, entry):
    fifo = tmp_path / entry
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    assert_data_refused(nasviz("data", dataset, "--root", str(tmp_path), "--offline"), fifo, "FIFO")
    assert fifo.is_fifo()


def test_predict_refuses_a_fifo_in_a_folder_of_images(tmp_path):
    folder = image_folder(tmp_path / "pics") / "cat"
    os.mkfifo(folder / "pipe.png")
    from nasviz.deploy.predict import image_files
    from nasviz.errors import DataError

    with pytest.raises(DataError, match="pipe.png is a FIFO"):
        image_files([folder])
