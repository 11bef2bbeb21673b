"""Memory a setting will take, estimated before it is allocated: a setting that cannot fit is refused in one line
naming it and the memory available, rather than ending in an allocator traceback (or the OOM killer).

Activations are measured, not guessed: the network's forward pass runs once on one tiny batch (few channels,
small images) while a saved-tensors hook adds up what autograd keeps for the backward pass; feature maps scale
with the batch, the channels and the pixels, so the measurement is scaled up to the setting. Parameters are
counted on the meta device (nothing allocated).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from nasviz.errors import ConfigError

PROBE_CHANNELS, PROBE_SIDE = 4, 16
"""The probe's initial channels and image side (the setting's own where smaller)."""
BACKWARD_FACTOR = 2.0
"""Training holds the saved activations plus their gradients during the backward pass."""
INFERENCE_FACTOR = 4.0
"""Inference holds a few feature maps at once: this many of the largest."""
MAX_SHARE = 0.6
"""Largest share of the memory available now that a setting may ask for: the rest is left to the system, other
programs and the allocator's fragmentation (the estimate is within about 10% of the measured peak)."""


def available_bytes() -> int:
    """Memory the operating system can give this process now (psutil's `available`)."""
    import psutil

    return int(psutil.virtual_memory().available)


def available_device_bytes(device) -> int | None:
    """Free memory of a CUDA `device` (torch.device or text) now, or None for the CPU (host memory:
    `available_bytes`)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class Activations:
    """What one image's forward pass allocates, at the full setting."""

    saved: float
    """Bytes autograd keeps for the backward pass."""
    largest: float
    """Bytes of the largest single tensor."""


def network_activations(make_net, in_channels: int, channels: int, side: int) -> Activations:
    """Per-image activations of the network `make_net(channels)` at `side` x `side` images with `in_channels`
    channels, measured on a probe (see the module docstring) and scaled up."""
    import torch

    probe_c = min(channels, PROBE_CHANNELS)
    probe_s = min(side, PROBE_SIDE)
    saved, largest = [0], [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        size = t.numel() * t.element_size()
        saved[0] += size
        largest[0] = max(largest[0], size)
        return t

    torch_state = torch.random.get_rng_state()
    try:
        net = make_net(probe_c).train()
        x = torch.zeros(2, in_channels, probe_s, probe_s)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x)
    finally:
        torch.random.set_rng_state(torch_state)  # the probe leaves the seeded generators as they were
    scale = (channels / probe_c) * (side / probe_s) ** 2 / 2
    return Activations(saved[0] * scale, largest[0] * scale)


def parameter_bytes(make_net) -> int:
    """Bytes of the parameters and buffers of `make_net()`, counted on the meta device."""
    import torch

    with torch.device("meta"):
        net = make_net()
    return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))


def refuse_if_too_big(need: float, what: str, allowed: str, available: int | None = None) -> None:
    """ConfigError naming `what` (the setting and what it needs), the memory available and `allowed` where
    `need` bytes exceed the memory available."""
    available = available_bytes() if available is None else available
    if need > MAX_SHARE * available:
        raise ConfigError(f"{what} needs about {gb(need)} of memory, but this machine has {gb(available)} available "
                          f"(a setting may use {MAX_SHARE:.0%} of it); allowed: {allowed}")


def check_search(config, shape: tuple[int, int, int], num_classes: int, images: int, side: int,
                 available: int | None = None, device=None) -> None:
    """Refuse a search whose data at `side` x `side` (`images` in all, training and test) and whose supernet
    activations at `batch_size` cannot fit in memory, naming the setting that asks for it."""
    from nasviz.space.genotypes import get_space
    from nasviz.space.network import SearchNetwork

    c = config
    space = get_space(c.space)
    pixels = shape[0] * side * side
    original = images * shape[0] * shape[1] * shape[2]
    weight = c.weight_images if c.weight_images is not None else images
    resized = images * pixels if (side, side) != tuple(shape[1:]) else 0
    data = (original + resized  # the dataset as loaded and at image_size (uint8)
            + weight * pixels  # the weight part, copied into the batch stream
            + 4 * pixels * (c.fitness_images + c.bn_batches * c.batch_size))  # fitness and calibration (float32)
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(3)]
    per_image = max((network_activations(lambda ch, g=g: SearchNetwork(g, shape[0], num_classes, ch, c.layers),
                                         shape[0], c.channels, side) for g in genotypes), key=lambda a: a.saved)
    train = BACKWARD_FACTOR * per_image.saved * c.batch_size
    evaluate = INFERENCE_FACTOR * per_image.largest * c.eval_batch_size
    params = 4 * parameter_bytes(lambda: SearchNetwork(genotypes[0], shape[0], num_classes, c.channels, c.layers))
    named = f"image_size={side}" if c.image_size is not None else f"images of {side}x{side}"
    what = (f"{named} with batch_size={c.batch_size}, channels={c.channels}, layers={c.layers} ({images:,} images "
            f"in memory, {gb(max(train, evaluate))} of activations)")
    allowed = "a smaller image_size, batch_size, eval_batch_size, channels or layers"
    on_device = available_device_bytes(device) if device is not None else None
    if on_device is None:
        refuse_if_too_big(data + max(train, evaluate) + params, what, allowed, available)
        return
    refuse_if_too_big(data, what, allowed, available)  # the data stays in host memory (its batches go over)
    refuse_if_too_big(max(train, evaluate) + params, f"{what} on {device}", allowed, on_device)


def check_scoring(config, shape: tuple[int, int, int], num_classes: int, images: int, side: int,
                  batches: dict[str, int], available: int | None = None) -> None:
    """Refuse a search without a supernet (fitness from a zero-cost proxy or a table) whose data at `side` x `side`
    (`images` in all) and the search-width networks it trains or scores one at a time cannot fit in memory (on the
    CPU, where these run): `batches` names each batch setting that builds such a network (`proxy_batch_size`: a
    proxy's backward pass; `batch_size`: the final pick's retraining) and its size."""
    from nasviz.space.genotypes import get_space
    from nasviz.space.network import SearchNetwork

    c = config
    space = get_space(c.space)
    pixels = shape[0] * side * side
    resized = images * pixels if (side, side) != tuple(shape[1:]) else 0
    data = images * shape[0] * shape[1] * shape[2] + resized
    named = f"image_size={side}" if c.image_size is not None else f"images of {side}x{side}"
    allowed = f"a smaller image_size, {', '.join(batches) + ', ' if batches else ''}channels or layers"
    if not batches:
        refuse_if_too_big(data, f"{named} ({images:,} images in memory)", allowed, available)
        return
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(3)]
    per_image = max((network_activations(lambda ch, g=g: SearchNetwork(g, shape[0], num_classes, ch, c.layers),
                                         shape[0], c.channels, side) for g in genotypes), key=lambda a: a.saved)
    params = 4 * parameter_bytes(lambda: SearchNetwork(genotypes[0], shape[0], num_classes, c.channels, c.layers))
    name, batch = max(batches.items(), key=lambda item: item[1])
    network = BACKWARD_FACTOR * per_image.saved * batch + params + 4 * pixels * batch  # + the float batch
    what = (f"{named} with {name}={batch}, channels={c.channels}, layers={c.layers} ({images:,} images in memory, "
            f"{gb(BACKWARD_FACTOR * per_image.saved * batch)} of activations)")
    refuse_if_too_big(data + network, what, allowed, available)


def check_training(make_net, in_channels: int, channels: int, side: int, batch: int, what: str,
                   extra_bytes: float = 0, available: int | None = None, device=None) -> None:
    """Refuse to train the network `make_net(channels)` on batches of `batch` images of `side` x `side` where its
    activations, gradients, weights and optimizer state (plus `extra_bytes`, e.g. data copies) cannot fit."""
    acts = network_activations(make_net, in_channels, channels, side)
    params = parameter_bytes(lambda: make_net(channels))
    training = BACKWARD_FACTOR * acts.saved * batch + 4 * params
    what = f"{what} ({gb(BACKWARD_FACTOR * acts.saved * batch)} of activations)"
    allowed = "a smaller batch_size, channels or layers"
    on_device = available_device_bytes(device) if device is not None else None
    if on_device is None:
        refuse_if_too_big(extra_bytes + training, what, allowed, available)
    else:
        refuse_if_too_big(extra_bytes, what, allowed, available)
        refuse_if_too_big(training, f"{what} on {device}", allowed, on_device)


def check_inference(make_net, in_channels: int, channels: int, side: int, batch: int, what: str,
                    available: int | None = None) -> None:
    """Refuse to build and run the network `make_net(channels)` on `batch` images of `side` x `side` where its
    parameters and feature maps cannot fit in memory."""
    params = parameter_bytes(lambda: make_net(channels))
    acts = network_activations(make_net, in_channels, channels, side)
    refuse_if_too_big(2 * params + INFERENCE_FACTOR * acts.largest * batch, what,
                      "a model file of a network that fits this machine", available)
