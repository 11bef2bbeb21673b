"""Loading datasets whole into memory as uint8 tensors: Fashion-MNIST offline, torchvision's datasets, and
folders of the user's own images.

Every dataset is loaded as ``uint8`` tensors of shape N x C x H x W (Fashion-MNIST's 60k training images are
47 MB), because indexing a preloaded tensor is much faster than a per-item DataLoader. What is known about a
dataset without loading it is `nasviz.data.datasets`; making batches of it is `nasviz.data.batches` (its names are
importable from here too).

torchvision and PIL are imported inside the loaders only, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from nasviz.data.batches import (
    BatchStream,
    augment,
    check_positive_int,
    crop_padding_for,
    eval_batches,
    normalize,
    split_indices,
)
from nasviz.data.datasets import BUILTIN, DATASETS, IMAGEFOLDER_PREFIX, check_dataset_name
from nasviz.data.regular import check_tree, open_regular
from nasviz.errors import ConfigError, DataError, one_line
from nasviz.userpath import expand

__all__ = [
    "DATASETS", "IMAGEFOLDER_PREFIX", "BatchStream", "ImageData", "augment", "check_dataset_name",
    "crop_padding_for", "dataset_info", "default_root", "eval_batches", "load_dataset", "normalize", "split_indices",
]

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package puts its gzipped files."""

FASHION_MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The un-gzipped files torchvision's FashionMNIST reads from ``root/FashionMNIST/raw/``."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
HOLDOUT_FRACTION = 0.2
"""Share of an image folder without train/ and test/ subfolders that is held out as the test set."""
HOLDOUT_SEED = 0
DEFAULT_IMAGE_SIZE = 32
"""Side to which an image folder's images are resized when they differ in size."""
TORCHVISION_FILES = {
    "mnist": ("MNIST",),
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz"),
    "svhn": ("train_32x32.mat", "test_32x32.mat"),
}
"""What torchvision reads of each built-in dataset under its root (files, or folders of them)."""

@dataclass
class ImageData:
    """A whole dataset in memory: uint8 N x C x H x W images and int64 labels, for train and test."""

    name: str
    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    flip: bool

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def default_root() -> Path:
    """Where datasets are stored unless a root is given: ``$NASVIZ_DATA`` or ``~/.cache/nasviz/data``."""
    return Path(os.environ.get("NASVIZ_DATA") or "~/.cache/nasviz/data").expanduser()


def dataset_info(name: str) -> tuple[tuple[int, int, int], int]:
    """Image shape and class count of a dataset, without loading a built-in one."""
    name = check_dataset_name(name)
    if name in BUILTIN:
        return BUILTIN[name].shape, BUILTIN[name].classes
    data = load_dataset(name)
    return data.shape, data.num_classes


def load_dataset(
    name: str = "fashion-mnist",
    root: str | Path | None = None,
    download: bool = True,
    *,
    image_size: int | None = None,
) -> ImageData:
    """Load a dataset whole into memory.

    `root` is the torchvision root folder (default `default_root()`); it is not used by ``imagefolder:PATH``.
    `image_size` resizes an image folder's images to image_size x image_size (only for ``imagefolder:``).
    Raises DataError (one line, saying how to provide the data) when the dataset cannot be found.
    """
    name = check_dataset_name(name)
    if image_size is not None:
        if not name.startswith(IMAGEFOLDER_PREFIX):
            raise ConfigError(f"image_size {image_size} applies only to imagefolder: datasets, not {name!r}")
        check_positive_int("image_size", image_size)
    if name.startswith(IMAGEFOLDER_PREFIX):
        return _load_imagefolder(Path(name[len(IMAGEFOLDER_PREFIX) :]), image_size)
    if root is not None and not str(root).strip():
        raise ConfigError(f"root={str(root)!r} is blank; allowed: a folder or none (the default)", setting="root")
    root = expand(root, "root") if root is not None else default_root()
    before = _folders(root)
    try:
        if name == "fashion-mnist":
            return _load_fashion_mnist(root, download)
        return _load_torchvision(name, root, download)
    except BaseException:  # nothing left behind: the (empty) folders the failed load made go again
        for folder in sorted(_folders(root) - before, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder goes
        raise


def _folders(root: Path) -> set[Path]:
    """`root`, the folders above it and below it, where they exist."""
    found = {p for p in (root, *root.parents) if p.is_dir()}
    return found | ({p for p in root.rglob("*") if p.is_dir()} if root.is_dir() else set())


# ----------------------------------------------------------------------------------------------- Fashion-MNIST


def _load_fashion_mnist(root: Path, download: bool) -> ImageData:
    """Try `root`, then Debian's files (decompressed into `root`), then a torchvision download."""
    raw = root / "FashionMNIST" / "raw"
    check_tree([root / "FashionMNIST"])  # a FIFO there would block torchvision's reader (or be replaced)
    if _has_files(raw):
        try:
            return _read_fashion_mnist(root, f"root {root}")
        except Exception as exc:  # torchvision's readers assert (AssertionError), index, unpack... on damaged files
            raise DataError(
                f"cannot read Fashion-MNIST in {raw}: {one_line(exc)}; delete that folder and retry"
            ) from exc
    tried = [f"no files in {raw}"]

    debian = Path(DEBIAN_FASHION_MNIST)
    if all((debian / f"{f}.gz").is_file() for f in FASHION_MNIST_FILES):
        try:
            _extract_debian(debian, raw)
            return _read_fashion_mnist(root, f"debian {debian} (extracted to {raw})")
        except Exception as exc:  # a damaged .gz or file: any of torchvision's reader errors
            tried.append(f"cannot use {debian}: {one_line(exc)}")
    else:
        tried.append(f"no Debian files in {debian}")

    if download:
        try:
            return _read_fashion_mnist(root, f"download to {root}", download=True)
        except Exception as exc:  # torchvision raises many kinds (URLError, RuntimeError, ...) when offline
            tried.append(f"download failed: {one_line(exc)}")
    else:
        tried.append("download disabled")

    raise DataError(
        f"Fashion-MNIST not found ({'; '.join(tried)}). Provide it one of three ways: "
        "a root folder holding FashionMNIST/raw/ with the un-gzipped files, "
        "`apt-get install dataset-fashion-mnist`, "
        "or connect to the internet so torchvision can download it", setting="root"
    )


def _has_files(raw: Path) -> bool:
    return all((raw / f).is_file() for f in FASHION_MNIST_FILES)


def _extract_debian(debian: Path, raw: Path) -> None:
    """Decompress Debian's .gz files into `raw`, each atomically (temporary file, then rename)."""
    raw.mkdir(parents=True, exist_ok=True)
    for f in FASHION_MNIST_FILES:
        if (raw / f).is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f"{f}.", suffix=".tmp")
        try:
            with gzip.open(debian / f"{f}.gz", "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            os.chmod(tmp, 0o644)  # mkstemp makes it private
            os.replace(tmp, raw / f)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _read_fashion_mnist(root: Path, source: str, download: bool = False) -> ImageData:
    from torchvision.datasets import FashionMNIST

    train = FashionMNIST(root, train=True, download=download)
    test = FashionMNIST(root, train=False, download=download)
    return _builtin("fashion-mnist", train, test, list(train.classes), source)


# ------------------------------------------------------------------------------- MNIST, CIFAR-10/100, SVHN


def _load_torchvision(name: str, root: Path, download: bool) -> ImageData:
    from torchvision import datasets

    check_tree([root / entry for entry in TORCHVISION_FILES[name]])  # a FIFO there would block torchvision
    try:
        if name == "svhn":
            train = datasets.SVHN(root, split="train", download=download)
            test = datasets.SVHN(root, split="test", download=download)
        else:
            cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
            train = cls(root, train=True, download=download)
            test = cls(root, train=False, download=download)
    except Exception as exc:  # offline downloads and corrupt files fail with many exception types
        how = "connect to the internet so torchvision can download it" if download else "allow download"
        raise DataError(
            f"cannot load {name} from root {root}: {one_line(exc)}; put torchvision's {name} files under "
            f"that root (or give a root folder holding them) or {how}", setting="root"
        ) from exc
    classes = [str(d) for d in range(10)] if name == "svhn" else list(train.classes)
    return _builtin(name, train, test, classes, f"root {root}")


def _builtin(name: str, train, test, classes: list[str], source: str) -> ImageData:
    """A built-in dataset from its torchvision train and test sets, with its facts (mean, std, flip)."""
    facts = BUILTIN[name]
    (train_images, train_labels), (test_images, test_labels) = _tensors(train), _tensors(test)
    return ImageData(name=name, train_images=train_images, train_labels=train_labels, test_images=test_images,
                     test_labels=test_labels, classes=classes, mean=facts.mean, std=facts.std, source=source,
                     flip=facts.flip)


def _tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision dataset's whole `.data` as uint8 N x C x H x W and its labels as int64."""
    images = torch.as_tensor(dataset.data)
    if images.ndim == 3:  # MNIST: N x H x W
        images = images.unsqueeze(1)
    elif images.shape[-1] == 3:  # CIFAR: N x H x W x C (SVHN is already N x C x H x W)
        images = images.permute(0, 3, 1, 2)
    labels = dataset.labels if hasattr(dataset, "labels") else dataset.targets
    return images.contiguous(), torch.as_tensor(labels, dtype=torch.int64)


# ------------------------------------------------------------------------------------------------ image folders


def _load_imagefolder(path: Path, image_size: int | None) -> ImageData:
    """Load ``path/<class>/<image>`` (or ``path/train/<class>/...`` and ``path/test|val/<class>/...``)."""
    test_dir = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    if (path / "train").is_dir() and test_dir is not None:
        classes = _class_folders(path / "train")
        unknown = sorted(set(_class_folders(test_dir)) - set(classes))
        if unknown:
            raise DataError(f"{test_dir} has classes that {path / 'train'} lacks: {', '.join(unknown)}")
        train_dir = path / "train"
        train_files, train_labels = _image_files(train_dir, classes)
        test_files, test_labels = _image_files(test_dir, classes)
        if not test_files:
            raise DataError(f"no images found in {test_dir} (expected {test_dir}/<class>/<image>)")
        source = f"folder {path.resolve()} (train/ and {test_dir.name}/)"
    else:
        base = path / "train" if (path / "train").is_dir() else path
        classes = _class_folders(base)
        train_dir = base
        files, labels = _image_files(base, classes)
        if len(files) < 2:
            raise DataError(f"{base} holds {len(files)} image; at least 2 are needed to hold out a test set")
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(HOLDOUT_SEED)).tolist()
        n_test = max(1, round(HOLDOUT_FRACTION * len(files)))
        test_ids, train_ids = sorted(order[:n_test]), sorted(order[n_test:])
        train_files, train_labels = [files[i] for i in train_ids], [labels[i] for i in train_ids]
        test_files, test_labels = [files[i] for i in test_ids], [labels[i] for i in test_ids]
        source = f"folder {base.resolve()} ({n_test} of {len(files)} images held out as test)"

    train_images, test_images = _read_images([train_files, test_files], image_size)
    _check_classes(train_dir, classes, train_labels)
    mean, std = _channel_stats(train_images)
    return ImageData(
        name=IMAGEFOLDER_PREFIX + str(path),
        train_images=train_images,
        train_labels=torch.tensor(train_labels, dtype=torch.int64),
        test_images=test_images,
        test_labels=torch.tensor(test_labels, dtype=torch.int64),
        classes=classes,
        mean=mean,
        std=std,
        source=source,
        flip=True,
    )


def _class_folders(folder: Path) -> list[str]:
    """Sorted names of the class subfolders (hidden ones such as .ipynb_checkpoints are skipped)."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder} has no class folders; put each class's images in {folder}/<class>/")
    return classes


def _check_classes(folder: Path, classes: list[str], labels: list[int]) -> None:
    """DataError unless at least two classes have training images (one class leaves nothing to classify)."""
    present = sorted({classes[i] for i in labels})
    if len(present) < 2:
        raise DataError(f"{folder} has training images of {len(present)} class ({', '.join(present)}); at least 2 "
                        f"classes are needed, each in its own folder {folder}/<class>/")


def _image_files(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Every image file under folder/<class>/ (searched recursively) with its class index."""
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        if not (folder / name).is_dir():
            continue
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and not p.is_dir())
        check_tree(found)  # a FIFO, device or broken link named like an image stops the load, as a bad image does
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} in its class folders)")
    return files, labels


GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
"""Pillow's modes of one-channel images (8-bit, 16-bit, 32-bit integer, float)."""


def to_8bit(im, mode: str):
    """A Pillow image in `mode` ("L" or "RGB") with 8 bits per channel. Integer images of more than 8 bits ("I;16",
    and "I", as which Pillow opens 16-bit files) are scaled from 0..65535 to 0..255 (Pillow's own conversion clips
    them at 255); float images ("F") from 0..1. The same scale for every image, whatever it holds, so a dataset's
    images keep their relative brightness; values outside the range are clipped."""
    from PIL import Image

    if im.mode.startswith("I") or im.mode == "F":
        import numpy as np

        scale = 255.0 if im.mode == "F" else 255.0 / 65535.0
        a = np.nan_to_num(np.asarray(im, dtype=np.float64)) * scale
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))  # 2-D uint8: mode L
    return im.convert(mode)


def read_image(path: Path, mode: str, size: tuple[int, int]):
    """The image file `path` decoded in `mode` ("L" or "RGB", 8 bits, see `to_8bit`) at `size` (bilinear);
    DataError naming the file when it cannot be decoded (truncated, corrupt, not an image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_regular(path) as f, Image.open(f) as im:
            im = to_8bit(im, mode)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            return im
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {one_line(exc)}; repair or remove that file") from None


def _read_images(groups: list[list[Path]], image_size: int | None) -> list[torch.Tensor]:
    """Decode each group of files into one uint8 N x C x H x W tensor with a common mode and size.

    All images grayscale -> 1 channel, else RGB. Size: `image_size` if given, else the images' own size if
    they all agree, else DEFAULT_IMAGE_SIZE.
    """
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.functional import pil_to_tensor

    modes, sizes = set(), set()
    for f in (f for group in groups for f in group):
        try:
            with open_regular(f) as file, Image.open(file) as im:  # reads only the header
                modes.add(im.mode)
                sizes.add(im.size)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot read image {f}: {one_line(exc)}; repair or remove that file") from None
    mode = "L" if modes <= GRAYSCALE_MODES else "RGB"
    if image_size is not None:
        size = (image_size, image_size)
    else:
        size = sizes.pop() if len(sizes) == 1 else (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    width, height = size

    tensors = []
    for group in groups:
        out = torch.empty((len(group), 1 if mode == "L" else 3, height, width), dtype=torch.uint8)
        for i, f in enumerate(group):
            out[i] = pil_to_tensor(read_image(f, mode, size))
        tensors.append(out)
    return tensors


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units (a constant channel gets std 1 to avoid dividing by 0)."""
    means, stds = [], []
    for c in range(images.shape[1]):
        std, mean = torch.std_mean(images[:, c].double() / 255, correction=0)
        means.append(round(float(mean), 4))
        stds.append(round(float(std), 4) if std > 1e-4 else 1.0)
    return tuple(means), tuple(stds)


def resized(data: ImageData, size: int) -> ImageData:
    """`data` with every image scaled to size x size by area averaging (rounded back to uint8); e.g. 28 -> 14
    averages 2 x 2 blocks. Labels, classes and normalisation stay as they are."""
    if isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= 1024:
        raise ConfigError(f"image_size={size!r} is out of range; allowed: an integer in 4..1024")
    if data.shape[1:] == (size, size):
        return data

    def scale(images: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
        for start in range(0, len(images), chunk):  # in chunks: float32 copies of a chunk only, never of the whole
            part = F.interpolate(images[start:start + chunk].to(torch.float32), size=(size, size), mode="area")
            out[start:start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8)
        return out

    return replace(data, train_images=scale(data.train_images), test_images=scale(data.test_images))

