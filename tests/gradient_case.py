"""One network's gradients against a float64 NCHW reference, in its own process.

Run by ``tests/test_layout.py`` (one subprocess per network and input shape, so a kernel
that corrupts the heap fails that case instead of killing pytest), or by hand::

    python tests/gradient_case.py darts_search '{"C": 2, "layers": 3}' 3,32,32

For each thread count and precision asked for it prints one JSON line: the error of
channels_last and of NCHW at that precision, both against float64 NCHW on the same
weights and batch, and the layout the federated loop picks for this network on CPU
(``training.channels_last: auto``; a user may force the other, so both are checked). The
error of a run is the worst, over parameter tensors, of
||g - g64|| / max(||g64||, 1e-3 * ||G64||) (G64: every gradient of the network, so a
tensor whose true gradient is near zero gets an absolute tolerance); the reported
figure is its median over three seeds (weights and batch), since a single ReLU whose
input rounds to the other side of zero can move one tensor's gradient by a percent in
any layout. The error over all parameters at once is reported too (median and worst
seed).
"""

from __future__ import annotations

import copy
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.federated.loop import use_channels_last
from dfnas.federated.precision import autocast_forward
from dfnas.models import build_model
from dfnas.search.shufflenet_supernet import ShuffleSupernet

SEEDS = (0, 1, 2)
BATCH = 16


def build(name: str, args: dict, shape: tuple[int, int, int]) -> nn.Module:
    if name == "supernet":  # DFNAS's search network, run on one sampled path
        return ShuffleSupernet(shape, 10, **args)
    return build_model(name, shape, 10, **args)


def forward(net: nn.Module, x: torch.Tensor, seed: int) -> torch.Tensor:
    if isinstance(net, ShuffleSupernet):
        g = torch.Generator().manual_seed(seed)
        path = torch.randint(0, net.alpha.shape[1], (net.num_layers,), generator=g).tolist()
        z = [torch.ones((), dtype=x.dtype, requires_grad=True) for _ in path]
        return net(x, path, z)
    return net(x)


def gradients(net: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, precision: str):
    with autocast_forward(net, precision):
        F.cross_entropy(forward(net, x, seed), y).backward()
    return {n: p.grad.detach().double() for n, p in net.named_parameters() if p.grad is not None}


def error(grads: dict, ref: dict) -> tuple[float, str]:
    """The worst tensor's relative error, and its name."""
    scale = 1e-3 * torch.cat([g.flatten() for g in ref.values()]).norm().item()
    return max(
        (((grads[n] - g).norm() / max(g.norm().item(), scale)).item(), n) for n, g in ref.items()
    )


def global_error(grads: dict, ref: dict) -> float:
    """||G - G64|| / ||G64|| over every parameter at once."""
    diff = torch.cat([(grads[n] - g).flatten() for n, g in ref.items()])
    return (diff.norm() / torch.cat([g.flatten() for g in ref.values()]).norm()).item()


def measure(name: str, args: dict, shape: tuple[int, int, int], runs: list[tuple[int, str]]):
    """One row per (threads, precision) run; the float64 reference is computed once per
    seed and shared by the runs."""
    layouts = {"channels_last": torch.channels_last, "nchw": None}
    errors = {(run, layout): [] for run in runs for layout in layouts}
    global_errors = {(run, layout): [] for run in runs for layout in layouts}
    worst: dict = {}
    for seed in SEEDS:
        torch.manual_seed(seed)
        net = build(name, args, shape)
        x, y = torch.randn(BATCH, *shape), torch.randint(0, 10, (BATCH,))
        ref = gradients(copy.deepcopy(net).double(), x.double(), y, seed, "fp32")
        for run in runs:
            torch.set_num_threads(run[0])
            for layout, fmt in layouts.items():
                model, xm = copy.deepcopy(net), x
                if fmt is not None:
                    model, xm = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
                grads = gradients(model, xm, y, seed, run[1])
                err = error(grads, ref)
                errors[run, layout].append(err[0])
                global_errors[run, layout].append(global_error(grads, ref))
                worst[run, layout] = max(worst.get((run, layout), err), err)
    rows = []
    for run in runs:
        auto = use_channels_last("auto", net, torch.device("cpu"), run[1])
        row = {"threads": run[0], "precision": run[1], "auto": "channels_last" if auto else "nchw"}
        for layout in layouts:
            row[f"{layout}_error"] = statistics.median(errors[run, layout])
            row[f"{layout}_global_error"] = statistics.median(global_errors[run, layout])
            row[f"{layout}_global_error_max"] = max(global_errors[run, layout])
            row[f"{layout}_worst_tensor"] = worst[run, layout][1]
        rows.append(row)
    return rows


def main(argv: list[str]) -> None:
    """argv: name, model args (JSON), shape (C,H,W), then runs as threads:precision
    (default 1:fp32 2:fp32 2:bf16)."""
    name, args, shape = argv[0], json.loads(argv[1]), tuple(int(s) for s in argv[2].split(","))
    runs = [
        (int(t), p) for t, p in (r.split(":") for r in argv[3:] or ["1:fp32", "2:fp32", "2:bf16"])
    ]
    for row in measure(name, args, shape, runs):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
