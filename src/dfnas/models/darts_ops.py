"""The DARTS primitives (Liu et al., ICLR 2019, operations.py), which FedNAS searches over.

``affine=False`` in the search network (as DARTS does, so BN cannot rescale an op's
contribution behind alpha's back); ``affine=True`` in the evaluation network. Norms are
``models.norm.BatchNorm2d``: in channels_last they run the NCHW kernel (see there why).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnas.models.norm import BatchNorm2d

MULTIPLIER = 4  # nodes concatenated into a cell's output (both networks)

PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class ReLUConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cout, k, stride, pad, bias=False),
            BatchNorm2d(cout, affine=affine),
        )


class DilConv(nn.Sequential):
    def __init__(
        self, cin: int, cout: int, k: int, stride: int, pad: int, dil: int, affine: bool
    ) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(cin, cin, k, stride, pad, dilation=dil, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            BatchNorm2d(cout, affine=affine),
        )

    def after_relu(self, x: Tensor) -> Tensor:
        """The op on an input already through its opening ReLU (a mixed edge computes
        that ReLU once for every op that opens with it)."""
        return self.norm(self.before_norm(x))

    def before_norm(self, x: Tensor) -> Tensor:
        """``after_relu`` up to its closing BatchNorm (``norm``), which a mixed edge
        applies itself, fused with its weighted sum (``models.mixed_norm``)."""
        return self[2](self[1](x))

    @property
    def norm(self) -> nn.BatchNorm2d:
        return self[3]


class SepConv(nn.Sequential):
    """Two stacked dilation-1 DilConvs, the first carrying the stride."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int, affine: bool) -> None:
        super().__init__(
            DilConv(cin, cin, k, stride, pad, 1, affine),
            DilConv(cin, cout, k, 1, pad, 1, affine),
        )

    def after_relu(self, x: Tensor) -> Tensor:
        return self.norm(self.before_norm(x))

    def before_norm(self, x: Tensor) -> Tensor:
        return self[1].before_norm(self[1][0](self[0].after_relu(x)))

    @property
    def norm(self) -> nn.BatchNorm2d:
        return self[1].norm


class PoolBN(nn.Sequential):
    """A pooling op and the BatchNorm DARTS puts after it in the search network."""

    def __init__(self, pool: nn.Module, c: int) -> None:
        super().__init__(pool, BatchNorm2d(c, affine=False))

    def before_norm(self, x: Tensor) -> Tensor:
        return self[0](x)

    @property
    def norm(self) -> nn.BatchNorm2d:
        return self[1]


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution with two offset stride-2 1x1 convs, concatenated.

    A stride-2 1x1 conv reads only every other pixel, so each is computed as that
    subsample followed by a stride-1 1x1 conv: the same math (and the same parameters
    as DARTS's ``Conv2d(cin, cout, 1, stride=2)``), but never oneDNN's strided 1x1
    kernel, whose AVX2 backward with fewer than 8 input channels in channels_last
    corrupts the heap at 1 thread and returns weight gradients off by 30-100 % at 2
    (torch 2.13; ``benchmarks/layout_faults.py`` shows it).
    """

    def __init__(self, cin: int, cout: int, affine: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = BatchNorm2d(cout, affine=affine)

    def forward(self, x: Tensor) -> Tensor:
        even, odd = self.halves(self.relu(x))
        return self.bn(torch.cat([_pointwise(self.conv1, even), _pointwise(self.conv2, odd)], 1))

    @staticmethod
    def halves(x: Tensor) -> tuple[Tensor, Tensor]:
        """What ``conv1`` and ``conv2`` read of an input already through the ReLU."""
        even, odd = _subsample(x, 0), _subsample(x, 1)
        # DARTS pads the shifted input at the bottom right: for odd sizes the last output
        # row/column of the odd branch reads only padding, which a bias-free conv maps to 0
        odd = F.pad(odd, (0, even.shape[3] - odd.shape[3], 0, even.shape[2] - odd.shape[2]))
        return even, odd


def _subsample(x: Tensor, offset: int) -> Tensor:
    """Every other pixel from ``offset``, in ``x``'s layout (a strided view would leave
    the conv to pick one)."""
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
    view = x[:, :, offset::2, offset::2]
    return view.contiguous(memory_format=fmt) if fmt else view.contiguous()


def _pointwise(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv`` (1x1, stride 2) applied at stride 1 to an input already subsampled."""
    return F.conv2d(x, conv.weight, conv.bias)


def make_op(name: str, c: int, stride: int, affine: bool) -> nn.Module:
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name.startswith("sep_conv"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2, affine)
    if name.startswith("dil_conv"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, k - 1, 2, affine)
    raise ValueError(f"unknown DARTS primitive {name!r}")


# -- the stacking both networks share (search and evaluation) ---------------------------
def reduction_layers(layers: int) -> set[int]:
    return {layers // 3, 2 * layers // 3}


def darts_stem(in_channels: int, C: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 3 * C, 3, padding=1, bias=False), BatchNorm2d(3 * C)
    )


def cell_plan(C: int, layers: int, multiplier: int = MULTIPLIER):
    """(C_prev_prev, C_prev, C_cell, reduction, reduction_prev) per cell, as DARTS stacks
    them: channels double at each reduction cell, a cell outputs multiplier x C_cell."""
    c_pp, c_p, c_curr, reduction_prev = 3 * C, 3 * C, C, False
    for i in range(layers):
        reduction = i in reduction_layers(layers)
        if reduction:
            c_curr *= 2
        yield c_pp, c_p, c_curr, reduction, reduction_prev
        reduction_prev = reduction
        c_pp, c_p = c_p, multiplier * c_curr
