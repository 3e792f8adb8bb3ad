"""A DARTS search cell whose edges that read the same state run as one
(``darts_search`` with ``merge_edges: true``).

At the sizes a CPU searches (C 4, 8x8 to 16x16 images, batches of 16-32) a mixed edge's
convolutions are so small that each costs its call, not its arithmetic: a oneDNN
convolution of a few channels takes 50-60 us forward whatever its size, and a MiLeNAS
step makes about 1,700 of them per pass. A cell's 14 edges read only 5 states, and every
edge of a state does the same things to it: so per state this computes one ReLU, one max
and one average pool (the same tensor for every edge, which DARTS computes once per
edge), each conv op of its E edges as one depthwise convolution over E copies of the
input and one pointwise convolution of E groups, and the closing norms of all its edges in
one fused node (``models.mixed_norm``, one weight per channel). The parameters stay in
the edges' own modules, concatenated at each call, so the state dict, the alphas and the
genotype are the unmerged network's.

The math is the unmerged cell's: in float64 its outputs, every gradient and every
running statistic equal the unmerged cell's (``tests/test_darts_merged.py``). In float32
the grouped kernels sum in other orders, so it is an argument of the model, part of a
run's identity, and runs made without it are never mixed with runs made with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnas.models.darts_ops import MULTIPLIER, DilConv, FactorizedReduce, PoolBN, SepConv
from dfnas.models.mixed_norm import weighted_norm_sum
from dfnas.models.norm import stacked_batch_norm


def merged_cell(cell, s0: Tensor, s1: Tensor, weights: Tensor, steps: int) -> Tensor:
    """``SearchCell.forward`` with each state's outgoing edges computed together, as soon
    as the state exists; a node sums its incoming edges in the unmerged cell's order
    (by source state)."""
    states = [cell.pre0(s0), cell.pre1(s1)]
    layout = _layout(states[1])
    incoming: list[list[Tensor]] = [[] for _ in range(steps)]

    def spread(j: int) -> None:
        targets = [i for i in range(steps) if j < 2 + i]  # node i reads states 0 .. i+1
        index = [_edge(i, j) for i in targets]
        outs = edge_group([cell.edges[k] for k in index], states[j], weights[index])
        for i, out in zip(targets, outs, strict=True):
            incoming[i].append(out)

    spread(0)
    spread(1)
    for i in range(steps):
        states.append(sum(incoming[i]).contiguous(memory_format=layout))
        if i + 1 < steps:
            spread(2 + i)
    return torch.cat(states[-MULTIPLIER:], dim=1)


def _edge(node: int, source: int) -> int:
    """Index of the edge source -> node among a cell's edges (node by node, sources in
    order: node i has the 2 + i edges from states 0 .. i+1)."""
    return sum(2 + k for k in range(node)) + source


def edge_group(edges: Sequence[nn.Module], x: Tensor, weights: Tensor) -> list[Tensor]:
    """Each mixed edge of ``edges`` (all reading ``x``, at one stride) applied to ``x``
    with its row of ``weights`` (edges x ops): one output per edge, as ``MixedOp.forward``
    computes it."""
    first, e, c = edges[0], len(edges), x.shape[1]
    ops = [[edge.ops[i] for edge in edges] for i in range(len(first.ops))]
    relu = F.relu(x)
    wide = _side_by_side(relu, e)  # the ReLU'd input once per edge, as one tensor
    zs = [_before_norm(ops[i], x, wide, e) for i in first.normed]
    norms = [[op.norm for op in ops[i]] for i in first.normed]
    # an op's weight per channel: edge k's weight over its c channels
    w = weights[:, first.normed].t().repeat_interleave(c, dim=1)
    if first.training and torch.is_grad_enabled():
        out = weighted_norm_sum(w, zs, norms)
    else:
        out = None
        for k, (z, group) in enumerate(zip(zs, norms, strict=True)):
            term = stacked_batch_norm(group, z) * w[k].view(1, -1, 1, 1)
            out = term if out is None else out.add_(term)
    outs = list(out.split(c, dim=1))
    for i in first.plain:  # skip_connect: the input itself, or FactorizedReduce's
        skips = _skip(ops[i], x, relu)
        outs = [o + weights[k, i] * s for k, (o, s) in enumerate(zip(outs, skips, strict=True))]
    return outs


def _before_norm(ops: list[nn.Module], x: Tensor, wide: Tensor, e: int) -> Tensor:
    """The E edges' op (one primitive) up to its closing norm, side by side."""
    op = ops[0]
    if isinstance(op, PoolBN):  # a pool reads x, not its ReLU, and has no parameters
        return _side_by_side(op[0](x), e)
    if isinstance(op, DilConv):
        return _convs([o[1] for o in ops], [o[2] for o in ops], wide, e)
    if isinstance(op, SepConv):
        inner = _convs([o[0][1] for o in ops], [o[0][2] for o in ops], wide, e)
        inner = stacked_batch_norm([o[0].norm for o in ops], inner)
        return _convs([o[1][1] for o in ops], [o[1][2] for o in ops], F.relu(inner), e)
    raise TypeError(f"no merged form of {type(op).__name__}")


def _convs(depthwise: list[nn.Conv2d], pointwise: list[nn.Conv2d], x: Tensor, e: int) -> Tensor:
    """E depthwise-then-pointwise pairs on E inputs side by side: one depthwise
    convolution over all their channels and one pointwise of E groups."""
    dw = depthwise[0]
    weight = torch.cat([m.weight for m in depthwise])
    stride, dilation, padding = dw.stride[0], dw.dilation[0], dw.padding[0]
    if stride > 1 and dilation == stride and padding % stride == 0:
        # a reduction cell's dil_conv reads only every other pixel: the same products and
        # sums as an undilated stride-1 conv of the subsampled input, without oneDNN's
        # strided dilated depthwise backward (3-20x slower in channels_last here)
        x = x[:, :, ::stride, ::stride].contiguous(memory_format=_layout(x))
        stride, dilation, padding = 1, 1, padding // stride
    y = F.conv2d(x, weight, None, stride, padding, dilation, groups=x.shape[1])
    return F.conv2d(y, torch.cat([m.weight for m in pointwise]), None, groups=e)


def _skip(ops: list[nn.Module], x: Tensor, relu: Tensor) -> list[Tensor]:
    """skip_connect on each edge: ``x`` (stride 1) or each edge's FactorizedReduce."""
    if not isinstance(ops[0], FactorizedReduce):
        return [op(x) for op in ops]
    # halves of equal width, so one convolution of 2E groups (a reduction cell's channels
    # are doubled, hence even)
    e, c_out = len(ops), ops[0].bn.num_features
    even, odd = FactorizedReduce.halves(relu)
    weight = torch.cat([w for op in ops for w in (op.conv1.weight, op.conv2.weight)])
    z = F.conv2d(torch.cat([even, odd] * e, dim=1), weight, None, groups=2 * e)
    return list(stacked_batch_norm([op.bn for op in ops], z).split(c_out, dim=1))


def _side_by_side(x: Tensor, e: int) -> Tensor:
    """``e`` copies of ``x`` along the channels (in ``x``'s layout)."""
    return torch.cat([x] * e, dim=1) if e > 1 else x


def _layout(x: Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return (
        torch.channels_last if channels_last and not x.is_contiguous() else torch.contiguous_format
    )
