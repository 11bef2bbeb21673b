"""Classify image files with a trained model file: what `python -m nasviz predict` runs.

Each image is prepared as the training images were: converted to grayscale ("L") for a 1-channel model or
to RGB for a 3-channel one, resized to the model's height x width with bilinear filtering if its size differs
(no crop, so the aspect ratio is not kept), then normalised with the model file's mean and std.
Fashion-MNIST and MNIST show a light object on a black background: photos of dark objects on white paper
need inverting first to look like what the network learned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from nasviz.data.loading import IMAGE_EXTENSIONS, normalize, read_image
from nasviz.data.regular import check_tree
from nasviz.deploy.model_file import ModelInfo
from nasviz.errors import DataError

BATCH = 256
MODES = {1: "L", 3: "RGB"}


def image_files(inputs: Iterable[str | Path]) -> list[Path]:
    """The files named, plus every image file found (recursively, sorted) in the folders named."""
    files: list[Path] = []
    for item in inputs:
        if not str(item).strip():
            raise DataError(f"image path {str(item)!r} is blank; allowed: an image file or a folder of them")
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and not p.is_dir())
            check_tree(found)  # a FIFO or broken link named like an image: one line naming it, as a bad image
            if not found:
                raise DataError(f"no images in folder {path} (looked for {', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path} is neither an image file nor a folder")
    if not files:
        raise DataError("no images given")
    return files


def load_images(files: Sequence[Path], info: ModelInfo) -> torch.Tensor:
    """The files as one uint8 N x C x H x W tensor, converted and resized to the model's input (see above)."""
    from torchvision.transforms.functional import pil_to_tensor

    channels, height, width = info.input_shape
    if channels not in MODES:
        raise DataError(f"the model takes {channels}-channel images; predict reads 1 (grayscale) or 3 (RGB)")
    out = torch.empty((len(files), channels, height, width), dtype=torch.uint8)
    for i, f in enumerate(files):
        out[i] = pil_to_tensor(read_image(f, MODES[channels], (width, height)))
    return out


@torch.inference_mode()
def probabilities(net: nn.Module, images_uint8: torch.Tensor) -> torch.Tensor:
    """Softmax class probabilities (N x classes) of `net` (from `load_model`) for uint8 images."""
    info: ModelInfo = net.model_info
    device = next(net.parameters()).device
    net.eval()
    chunks = []
    for start in range(0, len(images_uint8), BATCH):
        x = normalize(images_uint8[start : start + BATCH].to(device), info.mean, info.std)
        chunks.append(torch.softmax(net(x).float(), dim=1).cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, info.num_classes)


def predict(net: nn.Module, inputs: Iterable[str | Path], top: int = 1) -> list[dict]:
    """For each image file (folders expanded): {"file", "predictions": [{"class", "index", "probability"}, ...]}
    with the `top` most probable classes, most probable first."""
    info: ModelInfo = net.model_info
    files = image_files(inputs)
    probs = probabilities(net, load_images(files, info))
    k = max(1, min(top, info.num_classes))
    values, indices = probs.topk(k, dim=1)
    return [
        {"file": str(f), "predictions": [{"class": info.classes[j], "index": int(j), "probability": float(p)}
                                         for p, j in zip(vs.tolist(), js.tolist())]}
        for f, vs, js in zip(files, values, indices)
    ]
