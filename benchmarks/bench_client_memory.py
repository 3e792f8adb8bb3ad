"""One client's training memory per method (cost.memory), on CIFAR-shaped batches: what a
device must hold for one local step, apart from the process that simulates the clients.
One real step each (memory does not depend on the pixels); a DFNAS step samples one path,
so its figure is given over several steps (min..max).

    python benchmarks/bench_client_memory.py [--batch 32] [--paper]

--paper adds FedNAS's search step at paper size (DARTS C 16, 8 cells, batch 64 + 64), as
in the FedNAS paper (about 10 GB on CPU; a minute here).
"""

from __future__ import annotations

import argparse

import torch

from dfnas.cost.memory import TrainingMemory
from dfnas.federated.config import TrainConfig
from dfnas.federated.context import StepContext
from dfnas.methods import METHODS, MethodSetup
from dfnas.search.optimizers import SearchOptimizers

SHAPE, CLASSES = (3, 32, 32), 10


def measure(method_name: str, model: str, model_args: dict, batch: int, steps: int = 1):
    """(min, max) training bytes over ``steps`` real local steps of one client."""
    declared = METHODS.get(method_name)
    options = {"search_rounds": 1, "warmup_rounds": 0} if method_name == "dfnas" else {}
    setup = MethodSetup(model, model_args, SHAPE, CLASSES, TrainConfig(rounds=2), options)
    method = declared.build(setup)
    net = method.build_model().to(memory_format=torch.channels_last)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *SHAPE).to(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (batch,))
    val = iter(lambda: (x, y), None)
    ctx = StepContext(round=0, client=0, generator=gen, val=val)
    opt = method.make_optimizer(net, 0.01, ctx)
    sizes, parts = [], None
    for _ in range(steps):
        meter = TrainingMemory()
        with meter.step(net, opt):
            method.train_step(net, x, y, opt, ctx)
        sizes.append(meter.peak_bytes)
        parts = meter.parts
    return min(sizes), max(sizes), parts, isinstance(opt, SearchOptimizers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--paper", action="store_true")
    args = p.parse_args()
    b = args.batch
    rows = [
        ("FedAvg CNN", "fedavg", "cnn", {}, b, 1),
        ("fixed ShuffleNetV2 (CPU space)", "fedavg", "shufflenetv2", {}, b, 1),
        ("DFNAS supernet step (CPU space)", "dfnas", "shufflenetv2", {}, b, 8),
        ("FedNAS search step (C 4, 3 cells, shipped)", "fednas", "darts_search",
         {"C": 4, "layers": 3}, b, 1),
        ("FedNAS train stage (DARTS C 8, 3 cells)", "fedavg", "darts",
         {"C": 8, "layers": 3}, b, 1),
    ]  # fmt: skip
    if args.paper:
        rows.append(
            ("FedNAS search step (C 16, 8 cells, paper)", "fednas", "darts_search",
             {"C": 16, "layers": 8}, 64, 1)
        )  # fmt: skip
    print(f"client training memory, CIFAR-shaped, torch {torch.__version__}, CPU")
    print(f"{'run':44s} {'batch':>5s} {'MB':>16s}  params/grads/optimizer/activations MB")
    for label, method, model, model_args, batch, steps in rows:
        lo, hi, parts, _ = measure(method, model, model_args, batch, steps)
        span = f"{hi / 1e6:.1f}" if lo == hi else f"{lo / 1e6:.1f}..{hi / 1e6:.1f}"
        detail = "/".join(f"{v / 1e6:.2f}" for v in parts.values())
        print(f"{label:44s} {batch:5d} {span:>16s}  {detail}")


if __name__ == "__main__":
    main()
