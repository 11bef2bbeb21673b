"""Searches on images of 48x48 and more train without heap corruption (issue 26: "double free or corruption" in the
backward pass at image_size >= 64). The cause is oneDNN's 1x1 stride-2 backward-weights kernel for channels_last
inputs with fewer than 16 (AVX-512) or 8 (AVX2) input channels (uxlfoundation/oneDNN#6035), which FactorizedReduce
hit; it now runs those convolutions channels-first (`nasviz.space.ops.strided_1x1`), bitwise as before where the old
kernel worked. A crash would take the test process with it, so the training runs in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasviz.space import ops
from nasviz.space.ops import FactorizedReduce

ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import sys, torch
from nasviz.space.ops import FactorizedReduce
side, channels = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
op = FactorizedReduce(channels, channels, affine=False).to(memory_format=torch.channels_last)
for _ in range(3):
    x = torch.randn(32, channels, side, side).to(memory_format=torch.channels_last).requires_grad_(True)
    op(x).sum().backward()
print("trained")
"""


@pytest.mark.parametrize("side, channels", [(48, 4), (64, 4), (64, 8), (63, 12)])
def test_factorized_reduce_trains_on_large_channels_last_images_without_corrupting_the_heap(side, channels):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MALLOC_CHECK_": "3"}
    done = subprocess.run([sys.executable, "-c", TRAIN, str(side), str(channels)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "trained", (done.returncode, done.stderr[-500:])


def run(op: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_(True)
    op.zero_grad()
    (op(x) * g).sum().backward()
    return [op(x).detach(), op.conv_1.weight.grad.clone(), op.conv_2.weight.grad.clone(), x.grad]


@pytest.mark.parametrize("side, channels", [(28, 4), (14, 8), (27, 4), (28, 16)])
def test_the_workaround_is_bitwise_the_channels_last_kernel_where_that_one_works(side, channels, monkeypatch):
    torch.manual_seed(0)
    op = FactorizedReduce(channels, channels, affine=False).to(memory_format=torch.channels_last).eval()
    x = torch.randn(8, channels, side, side).to(memory_format=torch.channels_last)
    g = torch.randn(8, channels, (side + 1) // 2, (side + 1) // 2)
    fixed = run(op, x, g)
    monkeypatch.setattr(ops, "strided_1x1", lambda conv, inp: conv(inp))  # the old path: oneDNN's nhwc kernel
    old = run(op, x, g)
    assert all(torch.equal(a, b) for a, b in zip(fixed, old, strict=True))
    assert fixed[0].is_contiguous(memory_format=torch.channels_last)  # the ops after it see what they saw


def test_the_weight_gradient_is_right():
    torch.manual_seed(1)
    op = FactorizedReduce(4, 4, affine=False).to(memory_format=torch.channels_last).eval()
    x = torch.randn(4, 4, 64, 64).to(memory_format=torch.channels_last)
    g = torch.randn(4, 4, 32, 32)
    _, grad_1, _, _ = run(op, x, g)
    reference = torch.nn.grad.conv2d_weight(x.double().relu(), op.conv_1.weight.shape,
                                            g[:, :2].double() / op.bn.running_var[:2].add(op.bn.eps).sqrt().double()
                                            .view(1, 2, 1, 1), stride=2)
    assert torch.allclose(grad_1.double(), reference, rtol=1e-4, atol=1e-4)
