"""ShuffleNetV2 choice blocks, as in the SPOS / DSNAS one-shot space (Guo et al. 2020,
Hu et al. 2020): Shuffle 3x3, 5x5, 7x7 (a ShuffleNetV2 unit with that depthwise kernel) and
Shuffle-Xception (three depthwise-separable 3x3 convs). At stride 1 the unit splits its
channels, transforms one half and concatenates; at stride 2 both halves see the input and a
projection branch downsamples.

Matched to the DSNAS reference (SNAS-Series, DSNAS/blocks.py): the projection branch's
depthwise conv takes the block's own kernel (3, 5 or 7; 3 for Xception), and every
BatchNorm is affine with eps 1e-2 (``BN_EPS``). Left as PyTorch's: the weight init (DSNAS
draws convs from N(0, 1/fan_in channels); on digits that slowed both the supernet and a
fixed net, 300 central steps ending at loss 2.0 against 1.8, and 0.22 against 0.15).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dfnas.models.norm import BatchNorm2d

OPS = ("shuffle3x3", "shuffle5x5", "shuffle7x7", "xception")
BN_EPS = 1e-2  # DSNAS (--bn_eps 1e-2); PyTorch's default is 1e-5


def channel_split(x: Tensor) -> tuple[Tensor, Tensor]:
    """SPOS's shuffle: interleaved channels go to the two halves (a shuffle + split)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c // 2, 2, h, w)
    return x[:, :, 0], x[:, :, 1]


def bn(ch: int) -> BatchNorm2d:
    return BatchNorm2d(ch, eps=BN_EPS)


def _dw(ch: int, k: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(ch, ch, k, stride, k // 2, groups=ch, bias=False), bn(ch)]


def _pw(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 1, bias=False), bn(cout)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class ShuffleBlock(nn.Module):
    """One candidate op. ``cin`` -> ``cout`` channels at ``stride`` (1 or 2)."""

    def __init__(self, op: str, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; known: {', '.join(OPS)}")
        if cout <= (cin if stride == 2 else cin // 2):
            raise ValueError(f"a stride-{stride} block cannot map {cin} to {cout} channels")
        self.op, self.stride = op, stride
        branch_in = cin // 2 if stride == 1 else cin
        branch_out = cout - branch_in
        mid = cout // 2
        k = 3 if op == "xception" else int(op[-1])
        if op == "xception":
            main = [
                *_dw(branch_in, 3, stride),
                *_pw(branch_in, mid),
                *_dw(mid, 3, 1),
                *_pw(mid, mid),
                *_dw(mid, 3, 1),
                *_pw(mid, branch_out),
            ]
        else:
            main = [*_pw(branch_in, mid), *_dw(mid, k, stride), *_pw(mid, branch_out)]
        self.main = nn.Sequential(*main)
        self.proj = None
        if stride == 2:
            # DSNAS: the projection's depthwise kernel is the block's own
            self.proj = nn.Sequential(*_dw(cin, k, 2), *_pw(cin, cin))

    def forward(self, x: Tensor) -> Tensor:
        if self.proj is None:
            keep, x = channel_split(x)
            return torch.cat((keep, self.main(x)), dim=1)
        return torch.cat((self.proj(x), self.main(x)), dim=1)


def layer_plan(
    in_size: int, stages: list[list[int]] | list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """(out channels, stride) per choice layer: the first block of a stage downsamples
    while the feature map is larger than 2x2 (so 8x8 digits go 8-4-2-2, not down to
    1x1, where a 3x3 depthwise kernel sees only padding); 32x32 goes 32-16-8-4."""
    plan, size = [], in_size
    for blocks, channels in stages:
        for i in range(blocks):
            stride = 2 if i == 0 and size > 2 else 1
            size = (size + stride - 1) // stride
            plan.append((int(channels), stride))
    return plan


def check_channels(stem: int, stages: list) -> None:
    for blocks, channels in stages:
        if channels % 2 or blocks < 1:
            raise ValueError(f"stage ({blocks}, {channels}): channels must be even, blocks >= 1")
    if stem % 2:
        raise ValueError(f"stem channels must be even, got {stem}")


def make_stem(in_channels: int, stem: int) -> nn.Sequential:
    """3x3 conv at stride 1: small inputs keep their resolution for the stages."""
    return nn.Sequential(
        nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False),
        bn(stem),
        nn.ReLU(inplace=True),
    )


def make_head(cin: int, last: int) -> nn.Sequential:
    """1x1 conv to ``last`` channels, then global average pooling."""
    return nn.Sequential(
        nn.Conv2d(cin, last, 1, bias=False),
        bn(last),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
