"""What nasviz knows about each built-in dataset without loading it, and which dataset names are allowed.

Pure Python (no torch), so a configuration is checked against these facts before anything is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasviz.errors import ConfigError, suggest
from nasviz.userpath import expand


@dataclass(frozen=True)
class DatasetFacts:
    """Facts of one built-in dataset."""

    shape: tuple[int, int, int]
    """(channels, height, width) of one image."""
    classes: int
    train_images: int
    """Size of the training set (search splits it into a weight part and a fitness part)."""
    mean: tuple[float, ...]
    """Per-channel mean of the training images, in [0, 1] units."""
    std: tuple[float, ...]
    """Per-channel standard deviation of the training images, in [0, 1] units."""
    flip: bool
    """Whether mirrored images keep their meaning (digits do not, so they are never flipped)."""
    test_images: int = 10000
    """Size of the test set."""


BUILTIN: dict[str, DatasetFacts] = {
    "fashion-mnist": DatasetFacts((1, 28, 28), 10, 60000, (0.2860,), (0.3530,), flip=True),
    "mnist": DatasetFacts((1, 28, 28), 10, 60000, (0.1307,), (0.3081,), flip=False),
    "cifar10": DatasetFacts((3, 32, 32), 10, 50000, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), flip=True),
    "cifar100": DatasetFacts((3, 32, 32), 100, 50000, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
                             flip=True),
    "svhn": DatasetFacts((3, 32, 32), 10, 73257, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), flip=False,
                         test_images=26032),
}
"""The built-in datasets (torchvision's), by name."""

DATASETS: tuple[str, ...] = tuple(BUILTIN)
"""Built-in dataset names; ``imagefolder:PATH`` names a folder of the user's own images."""

IMAGEFOLDER_PREFIX = "imagefolder:"


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
        path = expand(raw, "dataset")
        if not path.exists():
            raise ConfigError(f"imagefolder path {str(path)!r} does not exist")
        if not path.is_dir():
            raise ConfigError(f"imagefolder path {str(path)!r} is not a folder")
        return IMAGEFOLDER_PREFIX + str(path)
    if text.lower() in DATASETS:
        return text.lower()
    raise ConfigError(f"unknown dataset {name!r}{suggest(text.lower(), allowed)}; allowed: {', '.join(allowed)}")
