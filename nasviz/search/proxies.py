"""Zero-cost proxies and size baselines: a score for a genotype from its network at initialisation, no training.

Every proxy scores the genotype's **search-width network** (`SearchNetwork`: the network a search measures the
parameters and FLOPs of, and the one the ground-truth table trains), freshly initialised from `seed` with
torch's default initialisation (the table's own starting point). **Higher is better for every proxy.**

    images, labels = proxy_batch(data, batch_size=64, seed=0)      # a fixed, seeded batch of training images
    score("synflow", genotype, data_shape=(1, 14, 14), num_classes=10, channels=8, layers=3,
          images=images, labels=labels, seed=0)

| proxy | paper | images | labels | gradients | mode |
| --- | --- | --- | --- | --- | --- |
| `synflow` | Tanaka et al. 2020 | no (all-ones input) | no | yes | eval (BatchNorm = identity at init) |
| `naswot` | Mellor et al. 2021 (ICML) | yes | no | no | train |
| `snip` | Lee et al. 2019 (ICLR), per network as Abdelfattah et al. 2021 | yes | yes | yes | train |
| `grad_norm` | Abdelfattah et al. 2021 (ICLR) | yes | yes | yes | train |
| `jacob_cov` | Mellor et al. 2020 (arXiv v1 of NASWOT) | yes | no | yes (to the input) | train |
| `params` | trainable parameters (`nasviz.search.budget`) | no | no | no | — |
| `flops` | FLOPs of one image's forward pass (`nasviz.search.budget`) | no | no | no | — |

"Weights" below are, as in Abdelfattah et al., the weights of every convolution and linear layer (in a
search-width network: every parameter but the classifier's bias; its BatchNorms have no parameters).
"Train mode" means BatchNorm normalises with the batch's own statistics, as at the first step of training.

A proxy changes no global state: the initialisation draws from a private copy of torch's random generator, and
the caller's images are not modified. Costs per network are measured by `benchmarks/yardsticks.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nasviz.search.budget import measure_search_network
from nasviz.space.genotypes import Genotype, SearchSpace
from nasviz.space.network import SearchNetwork

JACOB_COV_K = 1e-5
"""The constant k of jacob_cov's score (Mellor et al. 2020)."""


def build_network(genotype: Genotype, data_shape: tuple[int, int, int], num_classes: int, channels: int,
                  layers: int, seed: int) -> SearchNetwork:
    """`genotype`'s search-width network, initialised from `seed` (torch's global generator is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SearchNetwork(genotype, data_shape[0], num_classes, channels, layers)


def weights(net: nn.Module) -> list[torch.Tensor]:
    """The weights of every convolution and linear layer of `net` (the parameters the pruning proxies score)."""
    return [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def synflow(net: nn.Module, data_shape: tuple[int, int, int]) -> float:
    """SynFlow (Tanaka, Kunin, Yamins & Ganguli 2020, "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS): replace every weight by its absolute value (the "linearised" network),
    feed one all-ones input, take R = the sum of the outputs, and score sum |theta * dR/dtheta| over the weights.
    Needs gradients, no data and no labels.

    Overflow: the whole computation runs in double precision (float64 reaches 1e308; at search width the
    scores of `mini` are far below). BatchNorm: the network is in eval mode, where a freshly initialised
    BatchNorm (running mean 0, variance 1, no affine parameters) is the identity up to the factor
    1/sqrt(1 + eps) — equivalent to removing BatchNorm, as Abdelfattah et al. (2021) do for synflow — so R is
    the product of absolute weights along paths, as the paper defines it. With every weight and the input
    positive, ReLU is the identity and max pooling passes positive values: the network is linear in each
    weight, and every term of the sum is non-negative."""
    net = net.double().eval()
    params = weights(net)
    with torch.no_grad():
        for p in params:
            p.abs_()
    net.zero_grad(set_to_none=True)
    out = net(torch.ones(1, *data_shape, dtype=torch.float64))
    out.sum().backward()
    with torch.no_grad():
        return float(sum((p * p.grad).abs().sum() for p in params if p.grad is not None))


def naswot(net: nn.Module, images: torch.Tensor) -> float:
    """NASWOT (Mellor, Turner, Storkey & Crowley 2021, "Neural Architecture Search without Training", ICML):
    over a mini-batch of N images, each image's binary code c_i says which ReLU units are active (input > 0),
    over every ReLU of the network; the kernel K_H[i, j] = N_A - d_H(c_i, c_j) (N_A: the number of units,
    d_H: the Hamming distance), i.e. the number of units on which images i and j agree; the score is
    log |det K_H| (`torch.linalg.slogdet`, float64; -inf when K_H is singular, e.g. two images with the same
    code). Needs images; no labels, no gradients. Train mode, as the network is built (the paper scores
    untrained networks as constructed)."""
    net.train()
    n = len(images)
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def count(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        active = (inputs[0].detach().flatten(1) > 0).to(torch.float64)
        kernel.add_(active @ active.T).add_((1 - active) @ (1 - active).T)  # agreements: both on, or both off

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for h in hooks:
            h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def _loss_gradients(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """The weights of `net` after one backward pass of the cross-entropy on (images, labels), in train mode."""
    net.train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(images), labels).backward()
    return weights(net)


def snip(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """SNIP (Lee, Ajanthan & Torr 2019, "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
    ICLR), summed over a whole network as Abdelfattah, Mehrotra, Dudziak & Lane 2021 ("Zero-Cost Proxies for
    Lightweight NAS", ICLR) apply it to NAS: sum over the weights of |dL/dtheta * theta|, L the cross-entropy
    of one mini-batch. Needs images, labels and gradients. Train mode."""
    params = _loss_gradients(net, images, labels)
    with torch.no_grad():
        return float(sum((p.grad * p).abs().sum(dtype=torch.float64) for p in params if p.grad is not None))


def grad_norm(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """grad_norm (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS", ICLR): the Euclidean norm
    of the gradient of the cross-entropy of one mini-batch, taken per layer's weight and summed over the layers
    (as the paper's baseline sums it). Needs images, labels and gradients. Train mode."""
    return float(sum(p.grad.double().norm() for p in _loss_gradients(net, images, labels) if p.grad is not None))


def jacob_cov(net: nn.Module, images: torch.Tensor) -> float:
    """jacob_cov (Mellor, Turner, Storkey & Crowley 2020, "Neural Architecture Search without Training", arXiv
    2006.04647 v1): J_i = d(sum of the network's outputs for image i)/d(image i), flattened, for each image of
    a mini-batch; Sigma_J = the correlation matrix of the J_i over the batch, with eigenvalues sigma_1..N; the
    score is -sum_i [log(sigma_i + k) + 1/(sigma_i + k)], k = 1e-5 (highest when the Jacobians are
    uncorrelated). Needs images and gradients with respect to the input; no labels. Train mode. A Jacobian
    that is constant over its pixels leaves the correlation undefined: the score is then -inf."""
    net.train()
    net.zero_grad(set_to_none=True)
    x = images.detach().clone().requires_grad_(True)
    net(x).sum().backward()
    jacobians = x.grad.flatten(1).double()
    corr = torch.corrcoef(jacobians)
    if not torch.isfinite(corr).all():
        return -math.inf
    sigma = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(sigma + JACOB_COV_K) + 1 / (sigma + JACOB_COV_K)).sum())


@dataclass(frozen=True)
class Proxy:
    """A proxy: how it is computed and what it needs (`needs_gradients`: a backward pass)."""

    name: str
    needs_images: bool
    needs_labels: bool
    needs_gradients: bool
    reference: str


PROXIES: dict[str, Proxy] = {p.name: p for p in (
    Proxy("synflow", False, False, True, "Tanaka et al. 2020, NeurIPS"),
    Proxy("naswot", True, False, False, "Mellor et al. 2021, ICML"),
    Proxy("snip", True, True, True, "Lee et al. 2019, ICLR; Abdelfattah et al. 2021, ICLR"),
    Proxy("grad_norm", True, True, True, "Abdelfattah et al. 2021, ICLR"),
    Proxy("jacob_cov", True, False, True, "Mellor et al. 2020, arXiv 2006.04647v1"),
    Proxy("params", False, False, False, "trainable parameters of the search-width network (nasviz.search.budget)"),
    Proxy("flops", False, False, False, "FLOPs of one forward pass of the search-width network (nasviz.search.budget)"),
)}
"""Every proxy by name; higher is better for all of them."""


def _compute(name: str, net: nn.Module, data_shape: tuple[int, int, int], images: torch.Tensor | None,
             labels: torch.Tensor | None) -> float:
    functions: dict[str, Callable[[], float]] = {
        "synflow": lambda: synflow(net, data_shape),
        "naswot": lambda: naswot(net, images),
        "snip": lambda: snip(net, images, labels),
        "grad_norm": lambda: grad_norm(net, images, labels),
        "jacob_cov": lambda: jacob_cov(net, images),
    }
    return functions[name]()


def score(name: str, genotype: Genotype | str, *, data_shape: tuple[int, int, int], num_classes: int,
          channels: int, layers: int, images: torch.Tensor | None = None, labels: torch.Tensor | None = None,
          seed: int = 0, space: SearchSpace | None = None) -> float:
    """Proxy `name`'s score of `genotype` (higher = better) on its search-width network of `channels` and
    `layers` for images of `data_shape` (C, H, W) and `num_classes` classes, initialised from `seed`.

    `images` (N x C x H x W float, normalised as a search feeds them; see `proxy_batch`) and `labels` (N int64)
    are needed by the proxies whose `PROXIES` entry says so. `space` checks `genotype` (and parses it when it
    is text). `params` and `flops` use neither the seed nor the images."""
    proxy = PROXIES.get(name)
    if proxy is None:
        raise ValueError(f"unknown proxy {name!r}; allowed: {', '.join(PROXIES)}")
    if isinstance(genotype, str):
        if space is None:
            raise ValueError("genotype text needs a space to be parsed; pass space=...")
        genotype = space.parse(genotype)
    elif space is not None:
        genotype = space.check(genotype)
    if proxy.needs_images and images is None:
        raise ValueError(f"proxy {name!r} needs images (a batch N x C x H x W); none given")
    if proxy.needs_labels and labels is None:
        raise ValueError(f"proxy {name!r} needs labels (one per image); none given")
    if images is not None and tuple(images.shape[1:]) != tuple(data_shape):
        raise ValueError(f"images of shape {tuple(images.shape[1:])} do not match data_shape={tuple(data_shape)}")
    if name in ("params", "flops"):
        size = measure_search_network(genotype, tuple(data_shape), num_classes, channels, layers)
        return float(getattr(size, name))
    images = images.detach().to(torch.float32) if images is not None else None
    with torch.inference_mode(False), torch.enable_grad():
        net = build_network(genotype, tuple(data_shape), num_classes, channels, layers, seed)
        return _compute(name, net, tuple(data_shape), images, labels)


def proxy_batch(data, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` training images of `data` (an `ImageData`) drawn without replacement by `seed`, normalised
    with the dataset's mean and std, and their labels: the fixed batch the data-dependent proxies score on."""
    from nasviz.data.batches import normalize

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 2 <= batch_size <= len(data.train_labels):
        raise ValueError(f"batch_size={batch_size!r}; allowed: an integer in 2..{len(data.train_labels)}")
    index = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(seed))[:batch_size]
    return normalize(data.train_images[index], data.mean, data.std), data.train_labels[index].to(torch.int64)
