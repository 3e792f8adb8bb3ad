"""The ShuffleNetV2 choice-block supernet DFNAS searches, and the child cut out of it.

Every choice layer holds all four candidate blocks (``shufflenet_blocks.OPS``); a forward
pass runs exactly one per layer, the path the caller gives. The architecture logits
``alpha`` (layers x ops) are a parameter of the supernet, so they travel and are averaged
with the weights. A child is a plain ``ShuffleNetV2`` whose blocks are the chosen ops,
initialised with the weights those ops hold in the supernet: nothing starts from scratch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dfnas.cost.flops import forward_flops, train_flops
from dfnas.models.shufflenet import DEFAULT_STAGES, ShuffleNetV2
from dfnas.models.shufflenet_blocks import (
    OPS,
    ShuffleBlock,
    check_channels,
    layer_plan,
    make_head,
    make_stem,
)


class ChoiceLayer(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ShuffleBlock(op, cin, cout, stride) for op in OPS)

    def forward(self, x: Tensor, choice: int, z: Tensor | None = None) -> Tensor:
        y = self.ops[choice](x)
        # DSNAS: multiplying by Z (a leaf equal to 1) leaves the value unchanged, but its
        # gradient is dL/dZ = <dL/dy, y>, the credit the architecture gradient needs
        return y if z is None else y * z


class ShuffleSupernet(nn.Module):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_classes: int,
        stem: int = 16,
        stages: list | None = None,
        last: int = 256,
    ) -> None:
        super().__init__()
        self.stages = [list(s) for s in (stages or DEFAULT_STAGES)]
        self.stem_channels, self.last = stem, last
        self.in_shape, self.num_classes = tuple(in_shape), num_classes
        check_channels(stem, self.stages)
        self.plan = layer_plan(in_shape[1], self.stages)
        self.stem = make_stem(in_shape[0], stem)
        layers, cin = [], stem
        for cout, stride in self.plan:
            layers.append(ChoiceLayer(cin, cout, stride))
            cin = cout
        self.layers = nn.ModuleList(layers)
        self.head = make_head(cin, last)
        self.classifier = nn.Linear(last, num_classes)
        # DSNAS's start (--loc_mean 1 --loc_std 0.01): all but uniform, the tiny noise breaking
        # ties; drawn from the global RNG, which the loop seeds per run
        self.alpha = nn.Parameter(torch.empty(len(self.plan), len(OPS)).normal_(1.0, 0.01))

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(
        self, x: Tensor, path: list[int] | None = None, z: list[Tensor | None] | None = None
    ) -> Tensor:
        path = self.argmax_path() if path is None else path
        x = self.stem(x)
        for i, layer in enumerate(self.layers):
            x = layer(x, path[i], None if z is None else z[i])
        return self.classifier(self.head(x))

    def argmax_path(self) -> list[int]:
        return self.alpha.detach().argmax(dim=1).tolist()

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "alpha"]

    def child_args(self, path: list[int]) -> dict:
        """model_args of the ``shufflenetv2`` model that is this path."""
        return {
            "ops": [OPS[c] for c in path],
            "stem": self.stem_channels,
            "stages": self.stages,
            "last": self.last,
        }

    def child(self, path: list[int]) -> ShuffleNetV2:
        """The path as a standalone network, inheriting the supernet's weights."""
        args = self.child_args(path)
        net = ShuffleNetV2(
            self.in_shape, self.num_classes, args["ops"], self.stem_channels, self.stages, self.last
        )
        net.load_state_dict(child_state(self.state_dict(), path))
        return net.to(self.alpha.device)


def child_state(super_state: dict[str, Tensor], path: list[int]) -> dict[str, Tensor]:
    """Map supernet keys to child keys: ``layers.i.ops.c.*`` -> ``blocks.i.*`` for c =
    path[i]; stem, head and classifier keep their names; other ops and alpha are dropped."""
    out = {}
    for key, value in super_state.items():
        if key == "alpha":
            continue
        if key.startswith("layers."):
            _, layer, _, op, rest = key.split(".", 4)
            if int(op) == path[int(layer)]:
                out[f"blocks.{layer}.{rest}"] = value.clone()
        else:
            out[key] = value.clone()
    return out


class CostTable:
    """Per-sample costs of every (layer, op), counted once from the operations: MACs per
    inference and training FLOPs (forward + backward). A path's cost is the fixed part
    (stem, head, classifier) plus its ops' costs; FLOP counts are additive over modules."""

    def __init__(self, net: ShuffleSupernet) -> None:
        shapes = _layer_input_shapes(net)
        self.op_macs = torch.zeros(net.num_layers, len(OPS), dtype=torch.float64)
        self.op_train = torch.zeros_like(self.op_macs)
        for i, layer in enumerate(net.layers):
            for c, op in enumerate(layer.ops):
                self.op_macs[i, c] = forward_flops(op, shapes[i]) / 2
                self.op_train[i, c] = train_flops(op, shapes[i], loss_fn=_input_grad_loss)
        tail = nn.Sequential(net.head, net.classifier)
        out_shape = _out_shape(net)
        self.fixed_macs = (
            forward_flops(net.stem, net.in_shape) + forward_flops(tail, out_shape)
        ) / 2
        self.fixed_train = train_flops(net.stem, net.in_shape) + train_flops(
            tail, out_shape, loss_fn=_input_grad_loss
        )

    def macs(self, path: list[int]) -> float:
        return self.fixed_macs + float(sum(self.op_macs[i, c] for i, c in enumerate(path)))

    def train_flops(self, path: list[int]) -> float:
        return self.fixed_train + float(sum(self.op_train[i, c] for i, c in enumerate(path)))


def _input_grad_loss(module: nn.Module, x: Tensor) -> Tensor:
    # inside the network a block's input needs a gradient too (it is not data)
    x = x.detach().requires_grad_(True)
    return module(x).float().pow(2).mean()


@torch.no_grad()
def _layer_input_shapes(net: ShuffleSupernet) -> list[tuple[int, int, int]]:
    x = torch.zeros(2, *net.in_shape, device=net.alpha.device)
    net_was_training = net.training
    net.eval()
    shapes = []
    x = net.stem(x)
    for layer in net.layers:
        shapes.append(tuple(x.shape[1:]))
        x = layer(x, 0)
    net.train(net_was_training)
    return shapes


@torch.no_grad()
def _out_shape(net: ShuffleSupernet) -> tuple[int, int, int]:
    c = net.plan[-1][0]
    size = net.in_shape[1]
    for _, stride in net.plan:
        size = (size + stride - 1) // stride
    return (c, size, size)


def only_ops(state: dict[str, Tensor], keep: list[set[int]]) -> dict[str, Tensor]:
    """A supernet state without the ops of each layer outside ``keep[layer]`` (what a
    client of path-only communication receives and returns); all else stays."""
    dropped = tuple(
        f"layers.{i}.ops.{c}." for i, ops in enumerate(keep) for c in range(len(OPS))
        if c not in ops
    )  # fmt: skip
    return {k: v for k, v in state.items() if not k.startswith(dropped)}
