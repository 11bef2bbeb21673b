"""`Recipe`: the settings by which the ground-truth table trains every genotype, declared with their allowed values
(`nasviz.settings`, as search and train declare theirs), so a bad recipe is one line before anything is written.
Pure Python: checked before torch is imported."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nasviz import settings
from nasviz.data.datasets import check_dataset_name
from nasviz.errors import ConfigError
from nasviz.settings import BATCH, CHANNELS, EPOCHS, GRAD_CLIP, LAYERS, LR, MAX_IMAGE_SIZE, WEIGHT_DECAY, setting


def _dataset(name: str, value: str) -> None:
    check_dataset_name(value)


@dataclass(frozen=True)
class Recipe:
    """How every genotype of the table is trained and tested (validated when made)."""

    dataset: str = setting("fashion-mnist", check=_dataset)
    image_size: int = setting(14, low=4, high=MAX_IMAGE_SIZE)
    channels: int = setting(8, **CHANNELS)
    layers: int = setting(3, **LAYERS)
    train_images: int = setting(10_000, low="batch_size", high=10_000_000)
    """Training images of the fixed subset (at least one batch)."""
    epochs: int = setting(3, **EPOCHS)
    batch_size: int = setting(64, **BATCH)
    lr: float = setting(0.05, **LR)
    momentum: float = setting(0.9, low=0, below=1)
    weight_decay: float = setting(3e-4, **WEIGHT_DECAY)
    grad_clip: float = setting(5.0, **GRAD_CLIP)
    test_images: int | None = setting(None, low=1)
    """Test on the first `test_images` test images (None, the table's setting: the whole test set)."""

    def __post_init__(self) -> None:
        settings.validate(self)

    @property
    def steps(self) -> int:
        return self.epochs * (self.train_images // self.batch_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_settings(cls, values: dict[str, Any], source: str = "recipe setting") -> Recipe:
        """A recipe from `values` (text from the command line, or a saved recipe's JSON values), validated; an
        unknown name or a bad value is a one-line ConfigError."""
        if not isinstance(values, dict):
            raise ConfigError(f"{source} is {type(values).__name__}, not an object of recipe settings")
        return settings.build(cls(), values, what=source)
