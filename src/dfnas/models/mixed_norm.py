"""The closing BatchNorms of a DARTS mixed edge fused with its weighted sum.

Six of a mixed edge's eight ops end in a BatchNorm without affine parameters (the two
sep_convs, the two dil_convs and the two pools), and the edge then weights each output by
softmax(alpha). Left to autograd, every one of them keeps two full tensors for the
backward pass, the norm's input (for BatchNorm's backward) and its output (for the weight's
gradient), and the backward pass materializes w_i * grad before each norm's backward
reads it. The normalized output alone is enough for both, since

    d out / d w_i = y_i,   d out / d z_i = rstd_i * w_i * (g - mean(g) - y_i * mean(g * y_i))

(y_i = (z_i - mean) * rstd_i, means per channel over batch and pixels). So this keeps only
y_i and rstd_i and shares mean(g) across the ops: the same math as the unfused edge,
about 6 full tensors fewer per edge. Running statistics are updated exactly as
``nn.BatchNorm2d`` does in training, by the NCHW kernel whatever the layout (``models.norm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dfnas.models.norm import batch_momentum, native_batch_norm, stacked_stats, write_back

_DIMS = (0, 2, 3)


def weighted_norm_sum(
    weights: Tensor,
    zs: Sequence[Tensor],
    norms: Sequence[nn.BatchNorm2d | Sequence[nn.BatchNorm2d]],
) -> Tensor:
    """sum_i weights[i] * norms[i](zs[i]) in training mode, with batch statistics.

    ``weights[i]`` is a scalar, or one weight per channel where ``norms[i]`` is several
    modules whose channels lie side by side in ``zs[i]`` (several edges at once,
    ``search.darts_merged``)."""
    groups = tuple((bn,) if isinstance(bn, nn.BatchNorm2d) else tuple(bn) for bn in norms)
    return _WeightedNormSum.apply(weights, groups, *zs)


class _WeightedNormSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights: Tensor, norms: tuple[tuple[nn.BatchNorm2d, ...], ...], *zs: Tensor):
        out, ys, rstds = None, [], []
        for i, (z, group) in enumerate(zip(zs, norms, strict=True)):
            momentum = batch_momentum(group)
            stats = stacked_stats(group)
            y, _, rstd = native_batch_norm(z, None, None, *stats, True, momentum, group[0].eps)
            write_back(group, stats)
            w = _per_channel(weights[i])
            out = y * w if out is None else out.addcmul_(y, w)
            ys.append(y)
            rstds.append(rstd)
        ctx.save_for_backward(weights, *ys, *rstds)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        weights, *saved = ctx.saved_tensors
        n = len(saved) // 2
        count = g.numel() // g.shape[1]
        centred = g - g.mean(_DIMS, keepdim=True)
        grad_w = torch.empty_like(weights)
        grads = []
        for i, (y, rstd) in enumerate(zip(saved[:n], saved[n:], strict=True)):
            gy = (g * y).sum(_DIMS, keepdim=True)
            grad_w[i] = gy.sum() if weights.dim() == 1 else gy.view(-1)
            gz = torch.addcmul(centred, y, gy, value=-1.0 / count)
            grads.append(gz.mul_((rstd * weights[i]).view(1, -1, 1, 1)))
        return grad_w, None, *grads


def _per_channel(w: Tensor) -> Tensor:
    """An op's weight as it multiplies a (N, C, H, W) tensor: a scalar as it is, one
    weight per channel along C."""
    return w if w.dim() == 0 else w.view(1, -1, 1, 1)
