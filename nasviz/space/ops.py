"""The candidate operations of the DARTS cell space as torch modules (as in DARTS's operations.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, dilated depthwise convolution, pointwise convolution, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked dilation-1 `DilConv`s (the first may stride), as DARTS defines separable convolution."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convolutions concatenated (odd sizes padded)."""

    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
            shifted = x[:, :, 1:, 1:]  # a stride-2 1x1 conv never reads the padding of an even size: skip the copy
        else:
            shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([strided_1x1(self.conv_1, x), strided_1x1(self.conv_2, shifted)], dim=1))


def strided_1x1(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` for a stride-2 1x1 convolution, computed channels-first on the CPU: on copies of a channels_last
    input (or a view of one, such as FactorizedReduce's shifted one) and of a channels_last weight.

    oneDNN's 1x1 backward-weights kernel for channels_last (nhwc) inputs with fewer input channels than its
    channel block (16 with AVX-512, 8 with AVX2) and a stride > 1 writes past its reduce-to-unit-stride workspace:
    heap corruption ("double free or corruption", a segfault, a hang, or silently wrong weight gradients) from
    about 48x48 images on (uxlfoundation/oneDNN#6035, open; torch 2.14.1 ships it). The channels-first kernel has no
    such workspace; its output, weight and input gradients are bitwise those of the channels_last kernel where that
    one works (tests/test_large_images.py), and the output goes back to channels_last for the ops after it."""
    if x.device.type != "cpu" or x.stride(1) != 1 or x.shape[1] == 1:  # not on a CPU, or channels-first already
        return conv(x)
    # a 1x1 weight keeps its channels_last strides through .contiguous() (size-1 dims), and those alone select the
    # nhwc kernel again: clone it with channels-first strides
    weight = conv.weight.clone(memory_format=torch.contiguous_format)
    return F.conv2d(x.contiguous(), weight, conv.bias, conv.stride).contiguous(memory_format=torch.channels_last)


class Pool(nn.Sequential):
    """3x3 max or average pooling; the supernet follows it with a parameter-free BatchNorm (as DARTS search)."""

    def __init__(self, kind: str, c: int, stride: int, with_bn: bool) -> None:
        pool = (
            nn.MaxPool2d(3, stride=stride, padding=1)
            if kind == "max"
            else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        )
        super().__init__(pool, *([nn.BatchNorm2d(c, affine=False)] if with_bn else []))


def make_op(name: str, c: int, stride: int, affine: bool, pool_bn: bool = False) -> nn.Module:
    """Build operation `name` on `c` channels with the given stride.

    `affine`: learnable BatchNorm scale/shift (True in evaluation networks, False in the supernet).
    `pool_bn`: follow pooling with a parameter-free BatchNorm (the supernet does, evaluation networks don't).
    """
    if name == "max_pool_3x3":
        return Pool("max", c, stride, pool_bn)
    if name == "avg_pool_3x3":
        return Pool("avg", c, stride, pool_bn)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name == "sep_conv_3x3":
        return SepConv(c, c, 3, stride, 1, affine)
    if name == "sep_conv_5x5":
        return SepConv(c, c, 5, stride, 2, affine)
    if name == "dil_conv_3x3":
        return DilConv(c, c, 3, stride, 2, 2, affine)
    if name == "dil_conv_5x5":
        return DilConv(c, c, 5, stride, 4, 2, affine)
    raise ValueError(f"unknown operation {name!r}")
