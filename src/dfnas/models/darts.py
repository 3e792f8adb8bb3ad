"""The DARTS evaluation network built from a genotype (Liu et al. 2019, model.py): what
FedNAS's train stage trains. Cells apply the genotype's ops (affine BN); drop-path on the
non-identity ops grows linearly with training progress (DARTS: 0 -> drop_path over the
epochs; here over the rounds, through ``set_progress``). No auxiliary head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dfnas.models.darts_ops import FactorizedReduce, ReLUConvBN, cell_plan, darts_stem, make_op
from dfnas.models.registry import MODELS


def drop_path(x: Tensor, prob: float) -> Tensor:
    if prob <= 0:
        return x
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    def __init__(
        self, genotype: dict, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.pre0 = (
            FactorizedReduce(c_pp, c, affine=True)
            if reduction_prev
            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=True)
        )
        self.pre1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=True)
        key = "reduce" if reduction else "normal"
        gene, self.concat = genotype[key], list(genotype[f"{key}_concat"])
        self.ops = nn.ModuleList(
            make_op(name, c, 2 if reduction and j < 2 else 1, affine=True) for name, j in gene
        )
        self.inputs = [int(j) for _, j in gene]
        self.multiplier = len(self.concat)

    def forward(self, s0: Tensor, s1: Tensor, drop_prob: float) -> Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(len(self.ops) // 2):
            total = 0
            for op_i in (2 * i, 2 * i + 1):
                op = self.ops[op_i]
                h = op(states[self.inputs[op_i]])
                if self.training and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNet(nn.Module):
    # training.channels_last: auto picks channels_last on CPU: faster and as exact as
    # NCHW for this network (benchmarks/bench_layout.py, tests/test_layout.py)
    cpu_channels_last = True

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        genotype: dict,
        C: int,
        layers: int,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.drop_path_max, self.drop_prob = drop_path, 0.0
        self.stem = darts_stem(in_shape[0], C)
        multiplier = len(genotype["normal_concat"])
        plans = list(cell_plan(C, layers, multiplier))
        cells = [EvalCell(genotype, *plan) for plan in plans]
        c_p = multiplier * plans[-1][2]
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, num_classes)

    def set_progress(self, fraction: float) -> None:
        """Training progress in [0, 1): drop-path grows linearly to ``drop_path``."""
        self.drop_prob = self.drop_path_max * fraction

    def forward(self, x: Tensor) -> Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.drop_prob)
        return self.classifier(s1.mean(dim=(2, 3)))


# DARTS V2, the cell published by Liu et al. (2019): the default when no search ran
DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0],
               ["sep_conv_3x3", 1], ["sep_conv_3x3", 1], ["skip_connect", 0],
               ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "normal_concat": [2, 3, 4, 5],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2],
               ["max_pool_3x3", 1], ["max_pool_3x3", 0], ["skip_connect", 2],
               ["skip_connect", 2], ["max_pool_3x3", 1]],
    "reduce_concat": [2, 3, 4, 5],
}  # fmt: skip


@MODELS.register("darts")
def darts(
    in_shape: tuple[int, int, int],
    num_classes: int,
    genotype: dict | None = None,
    C: int = 16,
    layers: int = 8,
    drop_path: float = 0.2,
) -> nn.Module:
    """A network of DARTS cells; ``genotype`` is what FedNAS's search wrote (default:
    the published DARTS V2 cell)."""
    return DartsNet(in_shape, num_classes, genotype or DARTS_V2, C, layers, drop_path)
