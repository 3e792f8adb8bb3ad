"""FedNAS's MiLeNAS step on the DARTS search net, unmerged against merged edges
(``darts_search`` ``merge_edges: true``, ``search/darts_merged.py``), side by side in one
process: the two contenders alternate, five rounds of ``--steps`` steps each after a
warm-up, and the median round is reported.

Sizes: the default config's search (digits 1x8x8, batch 16, C 4, NCHW, as the run picks
for one input channel), the verdicts' (CIFAR-10 at 16x16, batch 32, C 4, channels_last)
and the CPU paper twins' (32x32, batch 32, C 8); random inputs, since step time does not
depend on pixel values.

    python benchmarks/bench_merged_edges.py [--threads 1 2] [--steps 4] [--sizes digits verdict]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from side_by_side import alternate

from dfnas.search.darts_supernet import DartsSearchNet
from dfnas.search.milenas import milenas_step

SIZES = {  # input shape, batch, C, channels_last
    "digits": ((1, 8, 8), 16, 4, False),
    "verdict": ((3, 16, 16), 32, 4, True),
    "paper-cpu": ((3, 32, 32), 32, 8, True),
}


def step_fn(size: str, merge: bool) -> Callable[[], None]:
    """One MiLeNAS step of a fresh net (seeded: both contenders start from the same
    weights) on a fixed train and validation batch, as FedNAS's clients take it."""
    shape, batch, c, channels_last = SIZES[size]
    torch.manual_seed(0)
    net = DartsSearchNet(shape, 10, C=c, layers=3, merge_edges=merge)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=layout)
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(1)
    x, xv = (torch.randn(batch, *shape, generator=g).contiguous(memory_format=layout) for _ in "ab")
    y, yv = (torch.randint(0, 10, (batch,), generator=g) for _ in "ab")
    return lambda: milenas_step(net, x, y, xv, yv, w_opt, a_opt, 1.0, 5.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    a = ap.parse_args()
    print(f"torch {torch.__version__}; median of 5 rounds of {a.steps} steps")
    print("| size | threads | unmerged ms/step | merged ms/step | speed-up |")
    print("|---|---|---|---|---|")
    for size in a.sizes:
        for threads in a.threads:
            torch.set_num_threads(threads)
            steps = {merge: step_fn(size, merge) for merge in (False, True)}
            for step in steps.values():
                step()  # warm-up: oneDNN builds its kernels on first use
            median = alternate(steps, calls=a.steps)
            plain, merged = (median[m] * 1000 for m in (False, True))
            print(
                f"| {size} | {threads} | {plain:.1f} | {merged:.1f} | {plain / merged:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
