"""Tests for nasviz.data.loading: loading, splits, augmentation and batch streams."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from nasviz.data import loading as data
from nasviz.data.datasets import BUILTIN
from nasviz.errors import CheckpointError, ConfigError, DataError

HAS_DEBIAN = all((Path(data.DEBIAN_FASHION_MNIST) / f"{f}.gz").is_file() for f in data.FASHION_MNIST_FILES)
needs_debian = pytest.mark.skipif(not HAS_DEBIAN, reason="Debian package dataset-fashion-mnist is not installed")


@pytest.fixture(autouse=True)
def isolated_default_root(tmp_path, monkeypatch):
    """Never touch the user's real ~/.cache/nasviz/data."""
    monkeypatch.setenv("NASVIZ_DATA", str(tmp_path / "default-root"))


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """Fashion-MNIST extracted from Debian's files into a fresh root (done once for the module)."""
    if not HAS_DEBIAN:
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    root = tmp_path_factory.mktemp("fm-root")
    return root, data.load_dataset("fashion-mnist", root=root, download=False)


# ------------------------------------------------------------------------------------------------ Fashion-MNIST


@needs_debian
def test_fashion_mnist_from_debian_files(fashion):
    root, d = fashion
    assert d.name == "fashion-mnist"
    assert d.train_images.shape == (60000, 1, 28, 28) and d.test_images.shape == (10000, 1, 28, 28)
    assert d.train_images.dtype == torch.uint8 and d.train_images.is_contiguous()
    assert d.train_labels.dtype == torch.int64 and d.train_labels.shape == (60000,)
    assert d.test_labels.shape == (10000,)
    assert set(d.train_labels.unique().tolist()) == set(range(10))
    assert d.shape == (1, 28, 28) and d.num_classes == 10 and len(d.classes) == 10
    assert "debian" in d.source and str(root) in d.source
    assert d.flip
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.FASHION_MNIST_FILES)  # no temporary files left
    # the stated statistics are the real ones
    std, mean = torch.std_mean(d.train_images.float() / 255)
    assert mean.item() == pytest.approx(d.mean[0], abs=1e-3)
    assert std.item() == pytest.approx(d.std[0], abs=1e-3)


@needs_debian
def test_the_facts_table_matches_the_loaded_dataset(fashion):
    """What config validation and `dataset_info` know without loading is what loading finds."""
    _, d = fashion
    facts = BUILTIN["fashion-mnist"]
    assert (facts.shape, facts.classes, facts.train_images) == (d.shape, d.num_classes, len(d.train_labels))
    assert (facts.mean, facts.std, facts.flip) == (d.mean, d.std, d.flip)
    assert data.dataset_info("fashion-mnist") == (d.shape, d.num_classes)
    assert set(BUILTIN) == set(data.DATASETS) and all(not f.flip for n, f in BUILTIN.items() if n in ("mnist", "svhn"))


@needs_debian
def test_fashion_mnist_from_existing_root_without_debian(fashion, monkeypatch, tmp_path):
    root, first = fashion
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "missing"))
    d = data.load_dataset("fashion-mnist", root=str(root), download=False)
    assert d.source == f"root {root}"
    assert torch.equal(d.train_labels, first.train_labels)
    assert torch.equal(d.test_images[:100], first.test_images[:100])


def test_fashion_mnist_no_way_lists_all_three(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "missing"))
    with pytest.raises(DataError) as info:
        data.load_dataset("fashion-mnist", root=tmp_path / "empty", download=False)
    message = str(info.value)
    assert "\n" not in message
    assert "root folder" in message and "FashionMNIST/raw" in message
    assert "--" not in message and info.value.setting == "root"  # the command line names its own option
    assert "apt-get install dataset-fashion-mnist" in message
    assert "internet" in message


def test_default_root_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NASVIZ_DATA", str(tmp_path / "x"))
    assert data.default_root() == tmp_path / "x"
    monkeypatch.delenv("NASVIZ_DATA")
    assert data.default_root() == Path.home() / ".cache" / "nasviz" / "data"


def test_torchvision_dataset_missing_offline_is_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match=r"cannot load cifar10 from root .*empty") as info:
        data.load_dataset("cifar10", root=tmp_path / "empty", download=False)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------------- names


def test_check_dataset_name_canonical_and_errors(tmp_path):
    assert data.check_dataset_name("fashion-mnist") == "fashion-mnist"
    assert data.check_dataset_name(" CIFAR10 ") == "cifar10"
    assert data.check_dataset_name(f"imagefolder:{tmp_path}") == f"imagefolder:{tmp_path}"
    with pytest.raises(ConfigError) as info:
        data.check_dataset_name("fashoin-mnist")
    assert str(info.value) == (
        "unknown dataset 'fashoin-mnist' (did you mean 'fashion-mnist'?); "
        "allowed: fashion-mnist, mnist, cifar10, cifar100, svhn, imagefolder:PATH"
    )
    with pytest.raises(ConfigError, match=r"unknown dataset 'imagenet'; allowed"):
        data.check_dataset_name("imagenet")
    with pytest.raises(ConfigError, match="nope"):
        data.check_dataset_name(f"imagefolder:{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match="needs a path"):
        data.check_dataset_name("imagefolder:")
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        data.load_dataset("cifar-11")


# ---------------------------------------------------------------------------------------------- image folders


def _write_images(folder: Path, per_class: dict[str, int], channels: int = 3, size: tuple[int, int] = (12, 10)):
    """Write small PNGs; class k's images have pixel value 40 * (k + 1) so labels can be checked."""
    for k, (name, count) in enumerate(per_class.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            mode = "L" if channels == 1 else "RGB"
            Image.new(mode, (size[1], size[0]), (40 * (k + 1),) * channels).save(folder / name / f"{i}.png")


def _class_of_pixels(images: torch.Tensor) -> torch.Tensor:
    return images[:, 0, 0, 0].long() // 40 - 1


def test_imagefolder_with_train_and_test(tmp_path):
    _write_images(tmp_path / "train", {"cat": 3, "dog": 2, "fox": 4})
    _write_images(tmp_path / "test", {"cat": 1, "dog": 1, "fox": 2})
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    d = data.load_dataset(f"imagefolder:{tmp_path}")
    assert d.classes == ["cat", "dog", "fox"] and d.num_classes == 3
    assert d.train_images.shape == (9, 3, 12, 10) and d.test_images.shape == (4, 3, 12, 10)
    assert d.shape == (3, 12, 10) and d.train_images.dtype == torch.uint8
    assert d.train_labels.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert torch.equal(_class_of_pixels(d.test_images), d.test_labels)
    assert "train/ and test/" in d.source
    expected = (d.train_images.double() / 255).mean(dim=(0, 2, 3))
    assert d.mean == pytest.approx(expected.tolist(), abs=1e-3)


def test_imagefolder_val_subfolder_missing_class_keeps_label_indices(tmp_path):
    _write_images(tmp_path / "train", {"a": 2, "b": 2, "c": 2}, channels=1)
    _write_images(tmp_path / "val", {"a": 0, "b": 0, "c": 1}, channels=1)
    d = data.load_dataset(f"imagefolder:{tmp_path}")
    assert d.shape == (1, 12, 10)  # all grayscale: one channel
    assert d.test_labels.tolist() == [2]


def test_imagefolder_without_split_holds_out_20_percent(tmp_path):
    _write_images(tmp_path, {"x": 6, "y": 4}, channels=1)
    d = data.load_dataset(f"imagefolder:{tmp_path}")
    assert len(d.train_images) == 8 and len(d.test_images) == 2
    assert d.classes == ["x", "y"]
    assert torch.equal(_class_of_pixels(d.train_images), d.train_labels)
    assert torch.equal(_class_of_pixels(d.test_images), d.test_labels)
    again = data.load_dataset(f"imagefolder:{tmp_path}")
    assert torch.equal(again.test_labels, d.test_labels)  # the hold-out is seeded


def test_imagefolder_mixed_sizes_and_modes_resized(tmp_path):
    _write_images(tmp_path, {"a": 2}, channels=1, size=(20, 20))
    _write_images(tmp_path, {"b": 2}, channels=3, size=(40, 30))
    d = data.load_dataset(f"imagefolder:{tmp_path}")
    assert d.shape == (3, 32, 32)
    small = data.load_dataset(f"imagefolder:{tmp_path}", image_size=8)
    assert small.shape == (3, 8, 8)


def test_imagefolder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        data.load_dataset(f"imagefolder:{tmp_path / 'empty'}")
    (tmp_path / "noimages" / "cat").mkdir(parents=True)
    (tmp_path / "noimages" / "cat" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no images found"):
        data.load_dataset(f"imagefolder:{tmp_path / 'noimages'}")
    _write_images(tmp_path / "bad" / "train", {"a": 2})
    _write_images(tmp_path / "bad" / "test", {"zebra": 1})
    with pytest.raises(DataError, match="zebra"):
        data.load_dataset(f"imagefolder:{tmp_path / 'bad'}")
    (tmp_path / "broken" / "a").mkdir(parents=True)
    (tmp_path / "broken" / "a" / "x.png").write_bytes(b"not a png")
    (tmp_path / "broken" / "a" / "y.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        data.load_dataset(f"imagefolder:{tmp_path / 'broken'}")
    with pytest.raises(ConfigError, match="image_size"):
        data.load_dataset("mnist", image_size=16)


# ---------------------------------------------------------------------------------------------------- splits


def test_split_indices_disjoint_sized_and_seeded():
    weight, fitness = data.split_indices(1000, 300, 200, seed=1)
    assert len(weight) == 300 and len(fitness) == 200
    assert weight.dtype == torch.int64
    assert not set(weight.tolist()) & set(fitness.tolist())
    assert 0 <= int(weight.min()) and int(max(weight.max(), fitness.max())) < 1000
    again = data.split_indices(1000, 300, 200, seed=1)
    assert torch.equal(again[0], weight) and torch.equal(again[1], fitness)
    other = data.split_indices(1000, 300, 200, seed=2)
    assert not torch.equal(other[1], fitness)
    rest, fitness_all = data.split_indices(1000, None, 200, seed=1)
    assert torch.equal(fitness_all, fitness)  # fitness part does not depend on weight_size
    assert sorted(rest.tolist() + fitness.tolist()) == list(range(1000))


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((100, 50, 60), r"weight_size 50 is too large: at most 40"),
        ((100, None, 100), r"fitness_size 100 is too large: at most 99"),
        ((100, 0, 10), r"weight_size 0 must be a positive integer"),
        ((100, 10, 0), r"fitness_size 0 must be a positive integer"),
    ],
)
def test_split_indices_errors(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        data.split_indices(*args, seed=0)


# ---------------------------------------------------------------------------------------------- augmentation


def _random_images(n: int = 16, channels: int = 3, size: int = 8) -> torch.Tensor:
    return torch.randint(1, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(0)).to(torch.uint8)


def test_augment_identity_when_everything_off():
    images = _random_images()
    out = data.augment(images, torch.Generator().manual_seed(0), crop_padding=0, flip=False, cutout=0)
    assert torch.equal(out, images)


def test_augment_shape_dtype_seeded_and_changes_images():
    images = _random_images(64)
    kwargs = {"crop_padding": 2, "flip": True, "cutout": 3}
    a = data.augment(images, torch.Generator().manual_seed(5), **kwargs)
    b = data.augment(images, torch.Generator().manual_seed(5), **kwargs)
    c = data.augment(images, torch.Generator().manual_seed(6), **kwargs)
    assert a.shape == images.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    changed = (a != images).flatten(1).any(dim=1)
    assert changed.float().mean() > 0.9


def test_augment_flip_only_mirrors_about_half():
    images = _random_images(200)
    out = data.augment(images, torch.Generator().manual_seed(0), crop_padding=0, flip=True)
    mirrored = (out == images.flip(-1)).flatten(1).all(dim=1)
    same = (out == images).flatten(1).all(dim=1)
    assert bool((mirrored | same).all())
    assert 60 < int(mirrored.sum()) < 140


def test_augment_crop_is_a_shift_with_zero_fill():
    images = _random_images(50, channels=1)  # values 1..255, so padding zeros are recognisable
    out = data.augment(images, torch.Generator().manual_seed(0), crop_padding=2, flip=False)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets = []
    for i in range(len(images)):
        found = [(y, x) for y in range(5) for x in range(5) if torch.equal(out[i], padded[i, :, y : y + 8, x : x + 8])]
        assert len(found) == 1
        offsets += found
    assert {y for y, _ in offsets} == set(range(5)) and {x for _, x in offsets} == set(range(5))


def test_augment_cutout_zeroes_at_most_a_square():
    images = _random_images(50, channels=2)
    out = data.augment(images, torch.Generator().manual_seed(0), crop_padding=0, flip=False, cutout=3)
    zeroed = out == 0
    assert torch.equal(zeroed[:, 0], zeroed[:, 1])  # same square in every channel
    counts = zeroed[:, 0].flatten(1).sum(dim=1)
    assert int(counts.max()) == 9 and int(counts.min()) >= 2  # clipped at the border, never empty
    assert torch.equal(out[~zeroed], images[~zeroed])


def test_normalize_and_crop_padding_for():
    images = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)
    x = data.normalize(images, (0.5, 0.2), (0.5, 0.1))
    assert x.dtype == torch.float32
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0, 0.0, 2.0], abs=1e-6)
    with pytest.raises(ConfigError, match="one value per channel"):
        data.normalize(images, (0.5,), (0.5,))
    assert data.crop_padding_for((3, 32, 32)) == 4
    assert data.crop_padding_for((1, 28, 28)) == 2
    assert data.crop_padding_for((8, 8)) == 0


# ---------------------------------------------------------------------------------------------- batch streams


def _indexed(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose first pixel equals their index, so batches can be traced back to samples."""
    images = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return images, torch.arange(n) % 7


def _ids(x: torch.Tensor) -> list[int]:
    return torch.round(x[:, 0, 0, 0] * 255).long().tolist()  # mean 0, std 1: x = pixel / 255


def test_batch_stream_covers_each_sample_once_per_epoch():
    images, labels = _indexed(40)
    stream = data.BatchStream(images, labels, 8, (0.0,), (1.0,), seed=3)
    assert stream.steps_per_epoch == 5
    epochs = []
    for _ in range(2):
        seen = []
        for _ in range(stream.steps_per_epoch):
            x, y = stream.next()
            assert x.shape == (8, 1, 4, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
            assert torch.equal(y, torch.tensor(_ids(x)) % 7)  # labels travel with their images
            seen += _ids(x)
        assert sorted(seen) == list(range(40))
        epochs.append(seen)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    assert stream.epoch == 1


def test_batch_stream_drop_last_false_and_errors():
    images, labels = _indexed(10)
    stream = data.BatchStream(images, labels, 4, (0.0,), (1.0,), seed=0, drop_last=False)
    assert stream.steps_per_epoch == 3
    batches = [stream.next()[0] for _ in range(3)]
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(sum((_ids(b) for b in batches), [])) == list(range(10))
    dropping = data.BatchStream(images, labels, 4, (0.0,), (1.0,), seed=0)
    assert dropping.steps_per_epoch == 2
    with pytest.raises(ConfigError, match="batch_size 11"):
        data.BatchStream(images, labels, 11, (0.0,), (1.0,), seed=0)
    with pytest.raises(ConfigError, match="labels"):
        data.BatchStream(images, labels[:5], 4, (0.0,), (1.0,), seed=0)


def test_batch_stream_resume_is_exact_through_torch_save(tmp_path):
    images = _random_images(30, channels=1, size=8)
    labels = torch.arange(30)
    kwargs = {"seed": 11, "crop_padding": 2, "flip": True, "cutout": 2, "channels_last": True}
    original = data.BatchStream(images, labels, 8, (0.3,), (0.2,), **kwargs)
    for _ in range(5):  # into the second epoch
        original.next()
    torch.save(original.state_dict(), tmp_path / "stream.pt")
    expected = [original.next() for _ in range(6)]

    state = torch.load(tmp_path / "stream.pt", weights_only=True)
    resumed = data.BatchStream(images, labels, 8, (0.3,), (0.2,), **kwargs)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    for (x, y), (ex, ey) in zip((resumed.next() for _ in range(6)), expected):
        assert torch.equal(x, ex) and torch.equal(y, ey)
        assert x.is_contiguous(memory_format=torch.channels_last)

    other = data.BatchStream(images, labels, 4, (0.3,), (0.2,), **kwargs)
    with pytest.raises(CheckpointError, match="batches of 8"):
        other.load_state_dict(state)


def test_batch_stream_is_seeded_and_iterable():
    images, labels = _indexed(20)
    a = data.BatchStream(images, labels, 5, (0.0,), (1.0,), seed=1)
    b = data.BatchStream(images, labels, 5, (0.0,), (1.0,), seed=1)
    c = data.BatchStream(images, labels, 5, (0.0,), (1.0,), seed=2)
    first = [_ids(next(a)[0]) for _ in range(4)]
    assert first == [_ids(x) for x, _ in (next(b) for _ in range(4))]
    assert first != [_ids(c.next()[0]) for _ in range(4)]


def test_eval_batches_in_order_and_normalized():
    images, labels = _indexed(10)
    batches = list(data.eval_batches(images, labels, 4, (0.5,), (0.25,), channels_last=True))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert torch.equal(y, labels)
    assert torch.allclose(x, (images.float() / 255 - 0.5) / 0.25)
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
