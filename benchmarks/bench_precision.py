"""A local training step in fp32 against the same step with ``training.precision: bf16``
(bf16 autocast of the forward, ``dfnas.federated.precision``), for each network a run
trains: the FedAvg CNN, ResNet-20, the fixed ShuffleNetV2, and the MiLeNAS search step on
the DARTS supernet. Measured side by side in one process, alternating fp32 and bf16 so
that the machine's drift hits both alike; each figure is the best of ``--repeats``.

Whether bf16 pays depends on the CPU's kernels (AMX for dense convolutions and matmuls,
none for depthwise convolutions on ours), so this is the command to run before choosing
it on another machine.

    python benchmarks/bench_precision.py [--steps 20] [--search-steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dfnas.federated.precision import autocast_forward
from dfnas.models import build_model
from dfnas.search.darts_supernet import DartsSearchNet
from dfnas.search.milenas import milenas_step

SHAPE = (3, 32, 32)


def _plain_step(name: str, batch: int):
    net = build_model(name, SHAPE, 10).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return net, step


def _milenas_step(c: int, cells: int):
    net = DartsSearchNet(SHAPE, 10, C=c, layers=cells).to(memory_format=torch.channels_last)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999))

    def step(x, y):
        milenas_step(net, x, y, x, y, w_opt, a_opt, 1.0, 5.0)

    return net, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--search-steps", type=int, default=3, help="steps of the MiLeNAS row (4 s each here)"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    steps = {
        "FedAvg CNN": lambda: _plain_step("cnn", args.batch),
        "ResNet-20": lambda: _plain_step("resnet20", args.batch),
        "ShuffleNetV2 (fixed)": lambda: _plain_step("shufflenetv2", args.batch),
        "MiLeNAS step, DARTS C 8, 5 cells": lambda: _milenas_step(8, 5),
    }
    x = torch.rand(args.batch, *SHAPE).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    print(
        f"batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}; "
        f"seconds per step, best of {args.repeats} runs of {args.steps} steps "
        f"({args.search_steps} for MiLeNAS)"
    )
    for name, make in steps.items():
        net, step = make()
        n = args.search_steps if name.startswith("MiLeNAS") else args.steps
        best = {"fp32": float("inf"), "bf16": float("inf")}
        for _ in range(args.repeats):
            for precision in best:
                with autocast_forward(net, precision):
                    step(x, y)  # warm-up: kernels for this precision
                    t0 = time.perf_counter()
                    for _ in range(n):
                        step(x, y)
                    best[precision] = min(best[precision], (time.perf_counter() - t0) / n)
        print(
            f"  {name:34s} fp32 {best['fp32']:7.4f} s   bf16 {best['bf16']:7.4f} s   "
            f"bf16 speed-up {best['fp32'] / best['bf16']:5.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
