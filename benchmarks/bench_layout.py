"""Training-step time of every network in each CPU memory layout, side by side in one run,
and which layout ``training.channels_last: auto`` picks for it.

Three contenders per network, alternating, median of the repeats:
- ``nchw``: the default memory format;
- ``cl``: channels_last, every BatchNorm through the NCHW kernel (``models.norm``: what
  the project runs in channels_last, because the channels_last BatchNorm kernel loses
  accuracy, see tests/test_layout.py);
- ``cl_native_bn``: channels_last with torch's own channels_last BatchNorm (the project
  before that fix: fast but inexact, for reference only).

    python benchmarks/bench_layout.py [--batch 32] [--steps 10] [--repeats 3] [--threads 2]
                                      [--side 32]   # 16: the CIFAR-10 16x16 proxy
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import dfnas.models.mixed_norm as mixed_norm
from dfnas.federated.loop import use_channels_last
from dfnas.models import build_model
from dfnas.models.norm import BatchNorm2d
from dfnas.search.shufflenet_supernet import ShuffleSupernet

NETWORKS = {
    "cnn": lambda s: build_model("cnn", s, 10),
    "resnet20": lambda s: build_model("resnet20", s, 10),
    "mobilenetv2": lambda s: build_model("mobilenetv2", s, 10),
    "shufflenetv2": lambda s: build_model("shufflenetv2", s, 10),
    "supernet (one path)": lambda s: ShuffleSupernet(s, 10),
    "darts C8 3 cells": lambda s: build_model("darts", s, 10, C=8, layers=3, drop_path=0.0),
    "darts_search C4 3 cells": lambda s: build_model("darts_search", s, 10, C=4, layers=3),
}


def native_bn(net: nn.Module) -> nn.Module:
    """The same network with torch's own BatchNorm kernels in every layout."""
    for m in net.modules():
        if isinstance(m, BatchNorm2d):
            m.__class__ = nn.BatchNorm2d
    return net


def step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, opt, gen: torch.Generator) -> None:
    kw = {}
    if isinstance(net, ShuffleSupernet):
        kw["path"] = torch.randint(0, 4, (net.num_layers,), generator=gen).tolist()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(x, **kw), y).backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--side", type=int, default=32, help="input side (3 x side x side)")
    ap.add_argument("--only", nargs="*", help="network names (default: all)")
    args = ap.parse_args()
    shape = (3, args.side, args.side)
    torch.set_num_threads(args.threads)
    print(f"ms per training step, batch {args.batch}, {args.threads} threads, {shape} inputs")
    print("| network | nchw | cl (exact BN) | cl_native_bn (inexact) | auto picks |")
    print("|---|---|---|---|---|")
    for name in args.only or NETWORKS:
        torch.manual_seed(0)
        base = NETWORKS[name](shape)
        x, y = torch.randn(args.batch, *shape), torch.randint(0, 10, (args.batch,))
        contenders = {}
        for mode in ("nchw", "cl", "cl_native_bn"):
            net, xm = copy.deepcopy(base), x
            if mode != "nchw":
                net = net.to(memory_format=torch.channels_last)
                xm = x.contiguous(memory_format=torch.channels_last)
            if mode == "cl_native_bn":
                native_bn(net)
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
            contenders[mode] = (net, xm, opt)
        steps = max(1, args.steps // 4) if "search" in name else args.steps
        times: dict[str, list[float]] = {mode: [] for mode in contenders}
        for rep in range(args.repeats + 1):  # the first pass warms every contender up
            for mode, (net, xm, opt) in contenders.items():
                fused_norm = mixed_norm.native_batch_norm
                if mode == "cl_native_bn":
                    mixed_norm.native_batch_norm = torch.native_batch_norm
                gen = torch.Generator().manual_seed(rep)
                t0 = time.perf_counter()
                for _ in range(steps):
                    step(net, xm, y, opt, gen)
                if rep:
                    times[mode].append((time.perf_counter() - t0) / steps * 1e3)
                mixed_norm.native_batch_norm = fused_norm
        med = {mode: statistics.median(t) for mode, t in times.items()}
        auto = "cl" if use_channels_last("auto", base, torch.device("cpu")) else "nchw"
        print(
            f"| {name} | {med['nchw']:.1f} | {med['cl']:.1f} | {med['cl_native_bn']:.1f} "
            f"| {auto} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
