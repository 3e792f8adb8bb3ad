"""One SGD step of the verdict's small networks, eager against ``torch.compile`` (inductor,
default mode), side by side in one process: the compile time a job would pay first, and
the steady step time after it (median of 5 rounds of 10 steps, alternating).

Batch 32 of CIFAR-10's shape at 16x16 (the verdicts' proxy), NCHW as the loop runs these
networks. By default inductor compiles into a fresh cache directory, which is what a
job on a clean machine pays; ``--cache DIR`` reuses one (a second job on the machine).

    python benchmarks/bench_compile.py [--threads 1] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

from side_by_side import alternate

NETWORKS = {
    "CNN": ("cnn", {}),
    "ShuffleNetV2 (fixed)": ("shufflenetv2", {}),
    "ShuffleNetV2 (random child)": ("shufflenetv2", {"ops": "random", "arch_seed": 0}),
}


def step_fn(model: str, args: dict, compiled: bool) -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    from dfnas.models import build_model

    torch.manual_seed(0)
    net = build_model(model, (3, 16, 16), 10, **args)
    forward = torch.compile(net) if compiled else net
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.randint(0, 10, (32,), generator=g)

    def step() -> None:
        opt.zero_grad()
        F.cross_entropy(forward(x), y).backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", help="inductor cache directory to reuse (default: a fresh one)")
    a = ap.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = a.cache or tempfile.mkdtemp(prefix="inductor-")
    import torch

    torch.set_num_threads(a.threads)
    cache = os.environ["TORCHINDUCTOR_CACHE_DIR"]
    print(f"torch {torch.__version__}, {a.threads} thread(s), cache {cache}")
    print("| network | compile (first 2 steps) s | eager ms/step | compiled ms/step | speed-up |")
    print("|---|---|---|---|---|")
    for name, (model, args) in NETWORKS.items():
        t0 = time.perf_counter()
        compiled = step_fn(model, args, True)
        compiled()
        compiled()
        compile_s = time.perf_counter() - t0
        steps = {False: step_fn(model, args, False), True: compiled}
        steps[False]()
        median = alternate(steps, calls=10)
        eager, comp = (median[k] * 1000 for k in (False, True))
        print(
            f"| {name} | {compile_s:.1f} | {eager:.1f} | {comp:.1f} | {eager / comp:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
