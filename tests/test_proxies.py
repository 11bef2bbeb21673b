"""Zero-cost proxies on tiny networks: deterministic per seed, finite, and orderings that follow from their
definitions (no timing asserts)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasviz.search import proxies
from nasviz.search.budget import measure_search_network
from nasviz.space.genotypes import MINI

SHAPE = (1, 8, 8)
SIZE = dict(data_shape=SHAPE, num_classes=3, channels=4, layers=3)
MIXED = MINI.from_genes([(("sep_conv_3x3", 0), ("max_pool_3x3", 1)), (("dil_conv_3x3", 2), ("skip_connect", 0))])
ALL_CONV = MINI.from_genes([(("sep_conv_3x3", 0), ("sep_conv_3x3", 1)), (("dil_conv_3x3", 0), ("sep_conv_3x3", 2))])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_every_proxy_is_finite_and_the_same_for_the_same_seed():
    images, labels = batch()
    for name, proxy in proxies.PROXIES.items():
        values = [proxies.score(name, MIXED, **SIZE, images=images, labels=labels, seed=s) for s in (0, 0, 1)]
        assert all(math.isfinite(v) for v in values), name
        assert values[0] == values[1], f"{name} differs between two calls with seed 0"
        seeded = proxy.needs_images or proxy.needs_gradients
        assert (values[0] != values[2]) == seeded, f"{name}: seed 1 should {'' if seeded else 'not '}change it"


def test_a_proxy_leaves_the_callers_generator_and_images_alone_and_works_under_inference_mode():
    images, labels = batch()
    copy = images.clone()
    state = torch.get_rng_state()
    free = proxies.score("jacob_cov", MIXED, **SIZE, images=images, labels=labels, seed=3)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(images, copy)
    with torch.inference_mode():
        assert proxies.score("jacob_cov", MIXED, **SIZE, images=images, labels=labels, seed=3) == free
        assert proxies.score("snip", MIXED, **SIZE, images=images, labels=labels, seed=3) > 0


def test_params_and_flops_are_the_budget_modules_sizes():
    size = measure_search_network(MIXED, SHAPE, 3, 4, 3)
    assert proxies.score("params", MIXED, **SIZE) == size.params
    assert proxies.score("flops", MIXED, **SIZE) == size.flops
    text = str(MIXED)
    assert proxies.score("params", text, **SIZE, space=MINI) == size.params


def test_synflow_grows_with_width_on_an_all_conv_cell():
    for seed in range(3):
        narrow = proxies.score("synflow", ALL_CONV, **{**SIZE, "channels": 4}, seed=seed)
        wide = proxies.score("synflow", ALL_CONV, **{**SIZE, "channels": 8}, seed=seed)
        assert wide > narrow > 0


def test_synflow_is_the_number_of_weight_layers_times_the_output_of_the_absolute_weights_on_ones():
    """A chain conv -> ReLU -> linear: R (the sum of the outputs of |W|'s on an all-ones input) is linear in each
    layer's weights and every path crosses each layer once, so by Euler's theorem sum(theta * dR/dtheta) over
    one layer is R, and synflow = 2R — whatever the signs of the weights before linearisation."""
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(1, 3, 3, bias=False), nn.Linear(3 * 6 * 6, 2, bias=False)
    chain = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), linear)
    assert (conv.weight < 0).any() and (linear.weight < 0).any()
    with torch.no_grad():
        hidden = nn.functional.conv2d(torch.ones(1, *SHAPE, dtype=torch.float64), conv.weight.double().abs())
        r = float((hidden.flatten(1) @ linear.weight.double().abs().T).sum())
    assert proxies.synflow(chain, SHAPE) == pytest.approx(2 * r, rel=1e-12)


def test_naswot_is_the_log_determinant_of_the_hand_computed_kernel_of_two_images():
    images, _ = batch(2, seed=4)
    net = proxies.build_network(MIXED, SHAPE, 3, 4, 3, seed=5).train()
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out > 0).flatten(1)))
             for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(images)
    for h in hooks:
        h.remove()
    code = torch.cat(codes, dim=1)
    units = code.shape[1]
    hamming = int((code[0] != code[1]).sum())
    assert 0 < hamming < units
    # K = [[N_A, N_A - d], [N_A - d, N_A]]: det = N_A^2 - (N_A - d)^2
    expected = math.log(units ** 2 - (units - hamming) ** 2)
    got = proxies.score("naswot", MIXED, **SIZE, images=images, seed=5)
    assert got == pytest.approx(expected, rel=1e-12)


def test_naswot_and_jacob_cov_punish_a_batch_of_identical_images():
    images, _ = batch(4, seed=2)
    twins = images[:1].repeat(4, 1, 1, 1)
    assert proxies.score("naswot", MIXED, **SIZE, images=twins, seed=0) == -math.inf  # equal codes: K singular
    distinct = proxies.score("jacob_cov", MIXED, **SIZE, images=images, seed=0)
    same = proxies.score("jacob_cov", MIXED, **SIZE, images=twins, seed=0)
    k = proxies.JACOB_COV_K
    assert same < distinct <= -4 * (math.log(1 + k) + 1 / (1 + k)) + 1e-9  # the bound: uncorrelated Jacobians


def test_snip_and_grad_norm_are_zero_when_the_loss_has_no_gradient_and_match_their_definitions():
    images, labels = batch()
    one_class = {**SIZE, "num_classes": 1}  # cross-entropy over one class is 0 for any weights
    for name in ("snip", "grad_norm"):
        assert proxies.score(name, MIXED, **one_class, images=images, labels=torch.zeros(6, dtype=torch.int64)) == 0
    net = proxies.build_network(MIXED, SHAPE, 3, 4, 3, seed=7).train()
    params = proxies.weights(net)
    grads = torch.autograd.grad(nn.functional.cross_entropy(net(images), labels), params)
    snip = sum(float((g * p.detach()).abs().sum()) for g, p in zip(grads, params))
    norm = sum(float(g.norm()) for g in grads)
    assert proxies.score("snip", MIXED, **SIZE, images=images, labels=labels, seed=7) == pytest.approx(snip, rel=1e-5)
    assert proxies.score("grad_norm", MIXED, **SIZE, images=images, labels=labels, seed=7) == pytest.approx(norm,
                                                                                                           rel=1e-5)


def test_bad_input_is_refused_in_one_line():
    images, _ = batch()
    with pytest.raises(ValueError, match="unknown proxy 'synflo'; allowed: synflow"):
        proxies.score("synflo", MIXED, **SIZE)
    with pytest.raises(ValueError, match="'snip' needs labels"):
        proxies.score("snip", MIXED, **SIZE, images=images)
    with pytest.raises(ValueError, match="'naswot' needs images"):
        proxies.score("naswot", MIXED, **SIZE)
    with pytest.raises(ValueError, match="do not match data_shape"):
        proxies.score("naswot", MIXED, **{**SIZE, "data_shape": (1, 10, 10)}, images=images)
    assert {n for n, p in proxies.PROXIES.items() if p.needs_labels} == {"snip", "grad_norm"}


def test_proxy_batch_is_seeded_and_normalised():
    from nasviz.data.loading import ImageData

    g = torch.Generator().manual_seed(0)
    data = ImageData("toy", torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8, generator=g),
                     torch.arange(50) % 3, torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1,
                                                                                                   dtype=torch.int64),
                     ["a", "b", "c"], (0.5,), (0.25,), "test", False)
    a, la = proxies.proxy_batch(data, 8, seed=1)
    b, lb = proxies.proxy_batch(data, 8, seed=1)
    c, _ = proxies.proxy_batch(data, 8, seed=2)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape == (8, 1, 8, 8) and a.dtype == torch.float32 and float(a.min()) >= (0 - 0.5) / 0.25
    with pytest.raises(ValueError, match="batch_size=1"):
        proxies.proxy_batch(data, 1, seed=0)
