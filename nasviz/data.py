"""Datasets as in-memory uint8 tensors, train splits, augmentation and mini-batch streams.

Every dataset is loaded whole into memory as ``uint8`` tensors of shape N x C x H x W (Fashion-MNIST's 60k
training images are 47 MB), because indexing a preloaded tensor is much faster than a per-item DataLoader.
Images stay ``uint8`` until a batch is made; then they are augmented, converted to float and normalized.

Search splits the training set into a weight part (to train the supernet) and a fitness part (to score
candidates) with `split_indices`; the test set is kept for the final from-scratch training.

torchvision and PIL are imported inside the loaders only, so importing this module stays cheap.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from nasviz.errors import CheckpointError, ConfigError, DataError
from nasviz.space import suggest

DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist", "cifar10", "cifar100", "svhn")
"""Built-in dataset names; ``imagefolder:PATH`` names a folder of the user's own images."""

IMAGEFOLDER_PREFIX = "imagefolder:"
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package puts its gzipped files."""

FASHION_MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The un-gzipped files torchvision's FashionMNIST reads from ``root/FashionMNIST/raw/``."""

# Per-channel mean and std of the training images, in [0, 1] units.
STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}
NO_FLIP: tuple[str, ...] = ("mnist", "svhn")
"""Digits change meaning when mirrored, so these datasets are never flipped."""

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
HOLDOUT_FRACTION = 0.2
"""Share of an image folder without train/ and test/ subfolders that is held out as the test set."""
HOLDOUT_SEED = 0
DEFAULT_IMAGE_SIZE = 32
"""Side to which an image folder's images are resized when they differ in size."""


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


def check_dataset_name(name: str) -> str:
    """Return the canonical form of a dataset name (lower case, ``~`` expanded) or raise ConfigError.

    Loads nothing; for ``imagefolder:PATH`` it only checks that PATH is a folder.
    """
    allowed = (*DATASETS, IMAGEFOLDER_PREFIX + "PATH")
    text = str(name).strip()
    if text.lower().startswith(IMAGEFOLDER_PREFIX):
        raw = text[len(IMAGEFOLDER_PREFIX) :]
        if not raw:
            raise ConfigError("dataset 'imagefolder:' needs a path, e.g. imagefolder:~/pictures")
        path = Path(raw).expanduser()
        if not path.exists():
            raise ConfigError(f"imagefolder path {str(path)!r} does not exist")
        if not path.is_dir():
            raise ConfigError(f"imagefolder path {str(path)!r} is not a folder")
        return IMAGEFOLDER_PREFIX + str(path)
    if text.lower() in DATASETS:
        return text.lower()
    raise ConfigError(f"unknown dataset {name!r}{suggest(text.lower(), allowed)}; allowed: {', '.join(allowed)}")


SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "fashion-mnist": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "svhn": ((3, 32, 32), 10),
}
"""Image shape (C, H, W) and number of classes of each built-in dataset."""


def dataset_info(name: str) -> tuple[tuple[int, int, int], int]:
    """Image shape and class count of a dataset, without loading a built-in one."""
    name = check_dataset_name(name)
    if name in SHAPES:
        return SHAPES[name]
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
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"image_size {image_size!r} must be a positive integer")
    if name.startswith(IMAGEFOLDER_PREFIX):
        return _load_imagefolder(Path(name[len(IMAGEFOLDER_PREFIX) :]), image_size)
    root = Path(root).expanduser() if root is not None else default_root()
    if name == "fashion-mnist":
        return _load_fashion_mnist(root, download)
    return _load_torchvision(name, root, download)


# ----------------------------------------------------------------------------------------------- Fashion-MNIST


def _load_fashion_mnist(root: Path, download: bool) -> ImageData:
    """Try `root`, then Debian's files (decompressed into `root`), then a torchvision download."""
    raw = root / "FashionMNIST" / "raw"
    if _has_files(raw):
        try:
            return _read_fashion_mnist(root, f"root {root}")
        except (RuntimeError, ValueError, OSError) as exc:
            raise DataError(
                f"cannot read Fashion-MNIST in {raw}: {_one_line(exc)}; delete that folder and retry"
            ) from exc
    tried = [f"no files in {raw}"]

    debian = Path(DEBIAN_FASHION_MNIST)
    if all((debian / f"{f}.gz").is_file() for f in FASHION_MNIST_FILES):
        try:
            _extract_debian(debian, raw)
            return _read_fashion_mnist(root, f"debian {debian} (extracted to {raw})")
        except (OSError, EOFError, RuntimeError, ValueError) as exc:
            tried.append(f"cannot use {debian}: {_one_line(exc)}")
    else:
        tried.append(f"no Debian files in {debian}")

    if download:
        try:
            return _read_fashion_mnist(root, f"download to {root}", download=True)
        except Exception as exc:  # torchvision raises many kinds (URLError, RuntimeError, ...) when offline
            tried.append(f"download failed: {_one_line(exc)}")
    else:
        tried.append("download disabled")

    raise DataError(
        f"Fashion-MNIST not found ({'; '.join(tried)}). Provide it one of three ways: "
        "pass --root DIR holding FashionMNIST/raw/ with the un-gzipped files, "
        "`apt-get install dataset-fashion-mnist`, "
        "or connect to the internet so torchvision can download it"
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
    mean, std = STATS["fashion-mnist"]
    return ImageData(
        name="fashion-mnist",
        train_images=train.data.unsqueeze(1).contiguous(),
        train_labels=train.targets.long(),
        test_images=test.data.unsqueeze(1).contiguous(),
        test_labels=test.targets.long(),
        classes=list(train.classes),
        mean=mean,
        std=std,
        source=source,
        flip=True,
    )


# ------------------------------------------------------------------------------- MNIST, CIFAR-10/100, SVHN


def _load_torchvision(name: str, root: Path, download: bool) -> ImageData:
    from torchvision import datasets

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
            f"cannot load {name} from root {root}: {_one_line(exc)}; put torchvision's {name} files under "
            f"that root (or pass --root DIR holding them) or {how}"
        ) from exc
    mean, std = STATS[name]
    classes = [str(d) for d in range(10)] if name == "svhn" else list(train.classes)
    train_images, train_labels = _tensors(train)
    test_images, test_labels = _tensors(test)
    return ImageData(
        name=name,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        classes=classes,
        mean=mean,
        std=std,
        source=f"root {root}",
        flip=name not in NO_FLIP,
    )


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
        train_files, train_labels = _image_files(path / "train", classes)
        test_files, test_labels = _image_files(test_dir, classes)
        if not test_files:
            raise DataError(f"no images found in {test_dir} (expected {test_dir}/<class>/<image>)")
        source = f"folder {path.resolve()} (train/ and {test_dir.name}/)"
    else:
        base = path / "train" if (path / "train").is_dir() else path
        classes = _class_folders(base)
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


def _image_files(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Every image file under folder/<class>/ (searched recursively) with its class index."""
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        if not (folder / name).is_dir():
            continue
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        files += found
        labels += [index] * len(found)
    if not files:
        raise DataError(f"no images found in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)} in its class folders)")
    return files, labels


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
            with Image.open(f) as im:  # reads only the header
                modes.add(im.mode)
                sizes.add(im.size)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read image {f}: {_one_line(exc)}") from exc
    mode = "L" if modes <= {"1", "L", "LA"} else "RGB"
    if image_size is not None:
        size = (image_size, image_size)
    else:
        size = sizes.pop() if len(sizes) == 1 else (DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    width, height = size

    tensors = []
    for group in groups:
        out = torch.empty((len(group), 1 if mode == "L" else 3, height, width), dtype=torch.uint8)
        for i, f in enumerate(group):
            with Image.open(f) as im:
                im = im.convert(mode)
                if im.size != size:
                    im = im.resize(size, Image.Resampling.BILINEAR)
                out[i] = pil_to_tensor(im)
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def resized(data: ImageData, size: int) -> ImageData:
    """`data` with every image scaled to size x size by area averaging (rounded back to uint8); e.g. 28 -> 14
    averages 2 x 2 blocks. Labels, classes and normalisation stay as they are."""
    if isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= 1024:
        raise ConfigError(f"image_size={size!r} is out of range; allowed: an integer in 4..1024")
    if data.shape[1:] == (size, size):
        return data

    def scale(images: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(images.to(torch.float32), size=(size, size), mode="area")
        return out.round_().clamp_(0, 255).to(torch.uint8)

    return replace(data, name=data.name, train_images=scale(data.train_images), test_images=scale(data.test_images))


# ------------------------------------------------------------------------------------------- splits and batches


def split_indices(
    n_train: int, weight_size: int | None, fitness_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n_train) into disjoint (weight, fitness) index tensors, each sorted, chosen by `seed`.

    `weight_size` None takes all the images the fitness part leaves. For a given seed the fitness part does not
    depend on `weight_size`, so changing the weight budget keeps the same fitness images.
    """
    for label, value in (("n_train", n_train), ("fitness_size", fitness_size), ("weight_size", weight_size)):
        if value is None and label == "weight_size":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{label} {value!r} must be a positive integer")
    if fitness_size > n_train - 1:
        raise ConfigError(
            f"fitness_size {fitness_size} is too large: at most {n_train - 1} "
            f"(the training set has {n_train} images and the weight part needs at least 1)"
        )
    if weight_size is None:
        weight_size = n_train - fitness_size
    elif weight_size > n_train - fitness_size:
        raise ConfigError(
            f"weight_size {weight_size} is too large: at most {n_train - fitness_size} "
            f"({n_train} training images minus fitness_size {fitness_size})"
        )
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    fitness = order[:fitness_size]
    weight = order[fitness_size : fitness_size + weight_size]
    return weight.sort().values, fitness.sort().values


def normalize(images_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N x) C x H x W images -> float32 ``(x / 255 - mean) / std`` per channel, on the same device."""
    channels = images_uint8.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ConfigError(f"mean {tuple(mean)} and std {tuple(std)} need one value per channel ({channels})")
    m = torch.tensor(mean, dtype=torch.float32, device=images_uint8.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images_uint8.device).view(-1, 1, 1)
    return images_uint8.to(torch.float32).div_(255).sub_(m).div_(s)


def crop_padding_for(shape: Sequence[int]) -> int:
    """Standard random-crop padding for a (C, H, W) or (H, W) shape: 2 * (side // 16), e.g. 32 -> 4, 28 -> 2."""
    return 2 * (min(shape[-2:]) // 16)


def augment(
    images_uint8: torch.Tensor,
    generator: torch.Generator,
    *,
    crop_padding: int,
    flip: bool,
    cutout: int = 0,
) -> torch.Tensor:
    """Randomly augment a uint8 N x C x H x W batch, each sample on its own; returns a new uint8 tensor.

    - crop: pad `crop_padding` zero (black) pixels on every side, then cut an H x W window at a random offset;
    - flip: mirror left-right with probability 0.5;
    - cutout: set a `cutout` x `cutout` square around a random centre to 0 (black; clipped at the border).

    Random numbers come from `generator`, a CPU generator, so results do not depend on the images' device.
    All samples are done at once by indexing, without a Python loop.
    """
    if crop_padding < 0 or cutout < 0:
        raise ConfigError(f"crop_padding {crop_padding} and cutout {cutout} must be >= 0")
    n, channels, height, width = images_uint8.shape
    device = images_uint8.device

    def randint(high: int) -> torch.Tensor:
        return torch.randint(high, (n,), generator=generator).to(device)

    rows = torch.arange(height, device=device).expand(n, height)  # source row of each output row, per sample
    cols = torch.arange(width, device=device).expand(n, width)
    source = images_uint8
    if crop_padding > 0:
        p = crop_padding
        source = F.pad(images_uint8, (p, p, p, p))
        rows = rows + randint(2 * p + 1)[:, None]
        cols = cols + randint(2 * p + 1)[:, None]
    if flip:
        flipped = (torch.rand(n, generator=generator) < 0.5).to(device)
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    out = source[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(channels, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if cutout > 0:
        top = randint(height)[:, None] - cutout // 2
        left = randint(width)[:, None] - cutout // 2
        ys = torch.arange(height, device=device)[None, :]
        xs = torch.arange(width, device=device)[None, :]
        in_rows = (ys >= top) & (ys < top + cutout)  # n x H
        in_cols = (xs >= left) & (xs < left + cutout)  # n x W
        out = out.masked_fill(in_rows[:, None, :, None] & in_cols[:, None, None, :], 0)
    return out


class BatchStream:
    """Endless shuffled mini-batches over a subset held in memory, epoch after epoch, with augmentation.

    Each epoch visits the samples in a fresh random order; with `drop_last` the last incomplete batch of an
    epoch is skipped. `state_dict` / `load_state_dict` save and restore the exact position, so a resumed
    stream yields the same batches the original would have.
    """

    def __init__(
        self,
        images_uint8: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        seed: int,
        crop_padding: int = 0,
        flip: bool = False,
        cutout: int = 0,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        drop_last: bool = True,
    ) -> None:
        size = len(images_uint8)
        if len(labels) != size:
            raise ConfigError(f"{size} images but {len(labels)} labels")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size {batch_size!r} must be a positive integer")
        if size == 0 or (drop_last and batch_size > size):
            raise ConfigError(f"batch_size {batch_size} is larger than the {size} samples (at most {size})")
        if crop_padding < 0 or cutout < 0:
            raise ConfigError(f"crop_padding {crop_padding} and cutout {cutout} must be >= 0")
        self.device = torch.device(device)
        self.images = images_uint8.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_padding, self.flip, self.cutout = crop_padding, flip, cutout
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.steps_per_epoch = size // batch_size if drop_last else math.ceil(size / batch_size)
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.position = 0
        self.perm = torch.randperm(size, generator=self.generator)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.next()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (normalized float32 images, int64 labels) batch, both on the stream's device."""
        size = len(self.images)
        needed = self.batch_size if self.drop_last else 1
        if self.position + needed > size:  # epoch finished: reshuffle
            self.epoch += 1
            self.position = 0
            self.perm = torch.randperm(size, generator=self.generator)
        index = self.perm[self.position : self.position + self.batch_size]
        self.position += len(index)
        index = index.to(self.device)
        images = self.images[index]
        if self.crop_padding or self.flip or self.cutout:
            images = augment(images, self.generator, crop_padding=self.crop_padding, flip=self.flip, cutout=self.cutout)
        x = normalize(images, self.mean, self.std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def state_dict(self) -> dict:
        """Position in the stream, made only of tensors and ints so ``torch.load(weights_only=True)`` reads it."""
        return {
            "generator": self.generator.get_state(),
            "perm": self.perm.clone(),
            "position": self.position,
            "epoch": self.epoch,
            "size": len(self.images),
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a `state_dict`; raises CheckpointError if it was saved for another subset size/batch."""
        if state["size"] != len(self.images) or state["batch_size"] != self.batch_size:
            raise CheckpointError(
                f"batch stream state is for {state['size']} samples in batches of {state['batch_size']}; "
                f"this stream has {len(self.images)} samples in batches of {self.batch_size}"
            )
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])


def eval_batches(
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device = "cpu",
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalized images, labels) batches in order, without augmentation; the last one may be smaller."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size {batch_size!r} must be a positive integer")
    for start in range(0, len(images_uint8), batch_size):
        x = normalize(images_uint8[start : start + batch_size].to(device), mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[start : start + batch_size].to(device, torch.int64)
