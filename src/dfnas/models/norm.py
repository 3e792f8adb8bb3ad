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

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
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
        return in_nchw(super().forward, x)


def in_nchw(norm: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``norm(x)`` by the NCHW kernel, forward and backward, the output in ``x``'s layout
    (a norm applied to several modules' channels at once goes through here too)."""
    if needs_nchw(x):
        y = norm(_Relayout.apply(x, torch.contiguous_format, torch.channels_last))
        return _Relayout.apply(y, torch.channels_last, torch.contiguous_format)
    return norm(x)


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


# -- several BatchNorm2d modules as one norm over their channels side by side ----------
# (the merged edges of the DARTS search net, search/darts_merged.py: the same per-channel
# arithmetic as calling each module on its own channels, in one call)


def stacked_stats(norms: Sequence[nn.BatchNorm2d]) -> tuple[Tensor | None, Tensor | None]:
    """The modules' running mean and variance side by side: their own tensors for one
    module, concatenated copies for several (``write_back`` returns an update)."""
    first = norms[0]
    if len(norms) == 1 or first.running_mean is None:
        return first.running_mean, first.running_var
    return torch.cat([bn.running_mean for bn in norms]), torch.cat([bn.running_var for bn in norms])


def write_back(norms: Sequence[nn.BatchNorm2d], stats: tuple[Tensor | None, Tensor | None]) -> None:
    """Each module's share of ``stats`` (updated in place by a norm) into its own buffers."""
    mean, var = stats
    if len(norms) > 1 and mean is not None and var is not None:
        for bn, m, v in zip(norms, mean.chunk(len(norms)), var.chunk(len(norms)), strict=True):
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)


def batch_momentum(norms: Sequence[nn.BatchNorm2d]) -> float:
    """The running statistics' update factor of a training step, counting the step in
    every module as ``nn.BatchNorm2d.forward`` does (the modules share their settings)."""
    first = norms[0]
    if not first.track_running_stats:
        return 0.0
    for bn in norms:
        bn.num_batches_tracked.add_(1)
    if first.momentum is None:  # BatchNorm's cumulative average
        return 1.0 / float(first.num_batches_tracked)
    return first.momentum


def stacked_batch_norm(norms: Sequence[nn.BatchNorm2d], x: Tensor) -> Tensor:
    """``norms`` applied to their channels of ``x`` (side by side, in order) in one call:
    ``nn.BatchNorm2d.forward``'s arithmetic per channel, by the NCHW kernel."""
    first = norms[0]
    training = first.training
    factor = batch_momentum(norms) if training else 0.0
    stats = stacked_stats(norms)
    use_stats = not training or first.track_running_stats
    mean, var = stats if use_stats else (None, None)
    weight = torch.cat([bn.weight for bn in norms]) if first.affine else None
    bias = torch.cat([bn.bias for bn in norms]) if first.affine else None
    batch_stats = training or mean is None

    def norm(t: Tensor) -> Tensor:
        return F.batch_norm(t, mean, var, weight, bias, batch_stats, factor, first.eps)

    y = in_nchw(norm, x)
    if training and use_stats:
        write_back(norms, stats)
    return y
