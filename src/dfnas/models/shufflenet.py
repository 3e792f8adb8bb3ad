"""A fixed ShuffleNetV2 network from the DFNAS search space: one op per choice layer.

It is the FedAvg baseline "ShuffleNetV2 with a hand-picked architecture" (all Shuffle
3x3 by default), the random-architecture control (``ops: random`` with a seed), and the
network the DFNAS child is built as. The stem keeps stride 1 for small inputs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from itertools import islice

import torch
from torch import Tensor, nn

from dfnas.cost.flops import forward_flops
from dfnas.models.registry import MODELS
from dfnas.models.shufflenet_blocks import (
    OPS,
    ShuffleBlock,
    check_channels,
    layer_plan,
    make_head,
    make_stem,
)

# CPU-sized default space: 8 choice layers, 3 stages (the ImageNet space has 20 layers of
# 64-640 channels); a stride-2 block must widen, so stages grow from the 16-channel stem
DEFAULT_STAGES = [[2, 24], [2, 48], [4, 96]]


class ShuffleNetV2(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        ops: list[str],
        stem: int,
        stages: list,
        last: int,
    ) -> None:
        super().__init__()
        check_channels(stem, stages)
        plan = layer_plan(in_shape[1], stages)
        if len(ops) != len(plan):
            raise ValueError(f"{len(ops)} ops given for {len(plan)} choice layers")
        self.ops = list(ops)
        self.stem = make_stem(in_shape[0], stem)
        blocks, cin = [], stem
        for op, (cout, stride) in zip(ops, plan, strict=True):
            blocks.append(ShuffleBlock(op, cin, cout, stride))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = make_head(cin, last)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))))


def resolve_ops(ops: list[str] | str, num_layers: int, seed: int = 0) -> list[str]:
    """``ops`` as a list, one op name for every layer, or ``random`` (seeded)."""
    if ops == "random":
        return next(random_draws(num_layers, seed))
    if isinstance(ops, str):
        return [ops] * num_layers
    return list(ops)


def random_draws(num_layers: int, seed: int) -> Iterator[list[str]]:
    """The seed's stream of random architectures, one op per layer each; ``ops: random``
    is its first, the budgeted control (``random_within``) the first that fits."""
    rng = random.Random(seed)
    while True:
        yield [rng.choice(OPS) for _ in range(num_layers)]


@MODELS.register("shufflenetv2")
def shufflenetv2(
    in_shape: tuple[int, int, int],
    num_classes: int,
    ops: list[str] | str = "shuffle3x3",
    stem: int = 16,
    stages: list | None = None,
    last: int = 256,
    arch_seed: int = 0,
    max_macs: float | None = None,
) -> nn.Module:
    stages = stages or DEFAULT_STAGES
    num_layers = len(layer_plan(in_shape[1], stages))
    if max_macs is not None:
        if ops != "random":
            raise ValueError("max_macs: a budget for random networks only (ops: random)")
        ops = random_within(in_shape, num_classes, stem, stages, last, arch_seed, max_macs)
    ops = resolve_ops(ops, num_layers, arch_seed)
    return ShuffleNetV2(in_shape, num_classes, ops, stem, stages, last)


def random_within(
    in_shape: tuple[int, int, int],
    num_classes: int,
    stem: int,
    stages: list,
    last: int,
    seed: int,
    max_macs: float,
    draws: int = 1000,
) -> list[str]:
    """The random control under a device budget: draws from the seed's stream until a
    network fits ``max_macs`` (rejection sampling, so uniform over the networks of the
    space that fit; the first draw is ``ops: random``'s own). The candidates are built
    with torch's generator set aside, so the chosen network's weights are initialized as
    if it had been asked for by name."""
    stream = random_draws(len(layer_plan(in_shape[1], stages)), seed)
    with torch.random.fork_rng(devices=[]):
        for ops in islice(stream, draws):
            net = ShuffleNetV2(in_shape, num_classes, ops, stem, stages, last)
            if forward_flops(net, in_shape) // 2 <= max_macs:
                return ops
    raise ValueError(
        f"max_macs: no random network of this space within {max_macs:g} MACs in {draws} draws"
    )
