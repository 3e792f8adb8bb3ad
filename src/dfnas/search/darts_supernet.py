"""The DARTS search network FedNAS trains: cells of 4 intermediate nodes, every one of
the 14 edges a mixed op over the 8 primitives weighted by softmax(alpha). Normal and
reduction cells have their own alphas (14 x 8 each), parameters of the network so they
travel and are averaged with the weights. Reduction cells sit at 1/3 and 2/3 depth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dfnas.models.darts_ops import (
    MULTIPLIER,
    PRIMITIVES,
    FactorizedReduce,
    PoolBN,
    ReLUConvBN,
    cell_plan,
    darts_stem,
    make_op,
)
from dfnas.models.mixed_norm import weighted_norm_sum
from dfnas.models.registry import MODELS
from dfnas.search.darts_merged import merged_cell

STEPS = 4  # intermediate nodes per cell
NUM_EDGES = sum(2 + i for i in range(STEPS))  # 14


class MixedOp(nn.Module):
    """sum_i softmax(alpha)_i op_i(x), computed without the work that is not the sum's.

    - The four conv ops (sep_conv, dil_conv) all open with ReLU(x): it is computed once
      and shared (the same values; a quarter of the ReLU work and memory).
    - ``none`` (a zero tensor times its weight) is skipped: it adds exactly nothing to the
      output or to any alpha's gradient, since d out / d w_none = op_none(x) = 0.
    - In training, the six ops that close with a BatchNorm hand their pre-norm tensors to
      ``weighted_norm_sum``, which applies the norms and the weighted sum in one autograd
      node that keeps only what its backward needs (``models.mixed_norm``).
    """

    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        ops = []
        for name in PRIMITIVES:
            op = make_op(name, c, stride, affine=False)
            if "pool" in name:  # DARTS: BN after pooling in the search network
                op = PoolBN(op, c)
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        self._relu_first = tuple(hasattr(op, "after_relu") for op in ops)
        self._skip = PRIMITIVES.index("none")
        # the ops (by index) that close with a norm, and those added as they are: how the
        # edge sums its ops, which the merged cell (search.darts_merged) follows too
        self.normed = [i for i, op in enumerate(ops) if hasattr(op, "before_norm")]
        self.plain = [i for i in range(len(ops)) if i not in self.normed and i != self._skip]

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        relu = F.relu(x)
        if not (self.training and torch.is_grad_enabled()):
            out = None
            for i, op in enumerate(self.ops):
                if i == self._skip:
                    continue
                term = weights[i] * (op.after_relu(relu) if self._relu_first[i] else op(x))
                out = term if out is None else out.add_(term)
            return out
        zs = [self.ops[i].before_norm(relu if self._relu_first[i] else x) for i in self.normed]
        out = weighted_norm_sum(weights[self.normed], zs, [self.ops[i].norm for i in self.normed])
        for i in self.plain:
            out = out + weights[i] * self.ops[i](x)
        return out


class SearchCell(nn.Module):
    def __init__(
        self,
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        merge_edges: bool = False,
    ) -> None:
        super().__init__()
        self.reduction, self.merge_edges = reduction, merge_edges
        self.pre0 = (
            FactorizedReduce(c_pp, c, affine=False)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        )
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(c, 2 if reduction and j < 2 else 1) for i in range(STEPS) for j in range(2 + i)
        )

    def forward(self, s0: Tensor, s1: Tensor, weights: Tensor) -> Tensor:
        if self.merge_edges:
            return merged_cell(self, s0, s1, weights, STEPS)
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for _ in range(STEPS):
            s = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-MULTIPLIER:], dim=1)


class DartsSearchNet(nn.Module):
    # training.channels_last: auto picks channels_last on CPU: faster and as exact as
    # NCHW for this network (benchmarks/bench_layout.py, tests/test_layout.py)
    cpu_channels_last = True

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        C: int = 8,
        layers: int = 3,
        merge_edges: bool = False,
    ) -> None:
        super().__init__()
        self.in_shape, self.num_classes, self.C, self.layers = in_shape, num_classes, C, layers
        self.stem = darts_stem(in_shape[0], C)
        plans = list(cell_plan(C, layers))
        cells = [SearchCell(*plan, merge_edges=merge_edges) for plan in plans]
        c_p = MULTIPLIER * plans[-1][2]
        self.cells = nn.ModuleList(cells)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        # DARTS: alphas initialised at 1e-3 * N(0, 1)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, len(PRIMITIVES)))

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(self.pool(s1).flatten(1))

    def alpha_device(self) -> torch.device:
        return self.alphas_normal.device

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("alphas_")]


def derive_genotype(alphas_normal: Tensor, alphas_reduce: Tensor) -> dict:
    """DARTS's parse: per node, the two incoming edges with the strongest non-none op,
    each with that op."""

    def parse(alpha: Tensor) -> list[list]:
        weights = F.softmax(alpha.detach().double(), dim=-1)
        none = PRIMITIVES.index("none")
        gene, start = [], 0
        for i in range(STEPS):
            end = start + 2 + i
            w = weights[start:end].clone()
            w[:, none] = -1  # never pick 'none'
            best = w.max(dim=1)
            edges = sorted(range(2 + i), key=lambda j: -float(best.values[j]))[:2]
            for j in sorted(edges):
                gene.append([PRIMITIVES[int(best.indices[j])], j])
            start = end
        return gene

    concat = list(range(2, 2 + STEPS))
    return {
        "normal": parse(alphas_normal),
        "normal_concat": concat,
        "reduce": parse(alphas_reduce),
        "reduce_concat": concat,
    }


@MODELS.register("darts_search")
def darts_search(
    in_shape: tuple[int, int, int],
    num_classes: int,
    C: int = 8,
    layers: int = 3,
    merge_edges: bool = False,
) -> nn.Module:
    """FedNAS's search network by name, as any model (``model: darts_search``). It is
    registered here, where it is defined, so that models/ needs nothing of search/;
    importing ``dfnas.search`` registers it. ``merge_edges`` computes the edges that read
    one state together (``search.darts_merged``): the same network, faster on CPU, equal
    in float64 but not bit for bit in float32."""
    return DartsSearchNet(in_shape, num_classes, C=C, layers=layers, merge_edges=merge_edges)
