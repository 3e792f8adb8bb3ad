"""BatchNorm that never runs ATen's channels_last CPU kernel.

torch 2.13's CPU batch norm has two kernels: one for NCHW tensors and one for
channels_last (NHWC) tensors. The channels_last one accumulates its per-channel sums
(the forward's mean and variance, the backward's two reductions) less accurately: 10-60x
the NCHW kernel's relative error per call, growing with |mean| / std (1.7e-5 against
2.6e-7 at mean 10, std 1, 8 channels x 32 x 32 x 32 samples;
``benchmarks/layout_faults.py`` shows it). One norm's error is small, but a network
amplifies it: a pre-activation that rounds to the other side of zero flips a ReLU's
gradient, and the DARTS networks and ShuffleNetV2 came out with weight gradients 10-250x
further from a float64 reference than the same network in NCHW (``tests/test_layout.py``).

So every model's norms are this class: in channels_last it hands the NCHW kernel an NCHW
copy (and the backward an NCHW gradient), hence NCHW's accuracy in either layout, at the
price of two layout copies per norm. Whether channels_last still pays then depends on
the network (``benchmarks/bench_layout.py``; ``federated.loop.use_channels_last``). On GPU
and for NCHW inputs this is plain ``nn.BatchNorm2d``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def needs_nchw(x: Tensor) -> bool:
    """True for a 4-D channels_last CPU tensor, which the channels_last kernel would take."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` computed by the NCHW kernel whatever its input's layout, forward
    and backward; the output keeps the input's layout, and the state dict is
    ``nn.BatchNorm2d``'s."""

    def forward(self, x: Tensor) -> Tensor:
        if needs_nchw(x):
            y = super().forward(_Relayout.apply(x, torch.contiguous_format, torch.channels_last))
            return _Relayout.apply(y, torch.channels_last, torch.contiguous_format)
        return super().forward(x)


class _Relayout(torch.autograd.Function):
    """A copy into ``forward_format`` whose backward copies the gradient into
    ``backward_format``: autograd's own ``contiguous`` passes the gradient on in the
    layout it came in, and the norm's backward would then take the channels_last
    kernel after all."""

    @staticmethod
    def forward(ctx, x: Tensor, forward_format, backward_format) -> Tensor:
        ctx.backward_format = backward_format
        return x.contiguous(memory_format=forward_format)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad.contiguous(memory_format=ctx.backward_format), None, None


def native_batch_norm(z: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor, Tensor]:
    """``torch.native_batch_norm`` by the NCHW kernel (see the module docstring); the
    normalized output keeps ``z``'s layout."""
    if needs_nchw(z):
        y, mean, rstd = torch.native_batch_norm(z.contiguous(), *args, **kwargs)
        return y.contiguous(memory_format=torch.channels_last), mean, rstd
    return torch.native_batch_norm(z, *args, **kwargs)
