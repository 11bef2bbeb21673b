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

SEARCH = ["--preset", "smoke", "--set", "warmup_steps=3", "--set", "generations=0", "--set", "population=2",
          "--set", "top_k=2", "--set", "fitness_images=32", "--set", "checkpoint_every=100", "--quiet"]


@pytest.mark.parametrize("side", [48])  # the smallest image_size that aborted (64 and up did too)
def test_a_search_on_48x48_images_trains_without_corrupting_the_heap(side, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nasviz", "search", *SEARCH, "--set", f"image_size={side}", "--out",
                           str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])  # was -6/-11: "double free or corruption"
    assert (tmp_path / "run" / "result.json").exists()


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
