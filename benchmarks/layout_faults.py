"""The three torch 2.13 CPU faults the project works around, each shown on one op against
a float64 reference, each case in its own process (the first corrupts the heap).

1. oneDNN's AVX2 backward of a stride-2 1x1 conv with fewer than 8 input channels in
   channels_last: heap corruption at 1 thread, weight gradients off by 30-100 % at 2.
   AVX-512 kernels are right; on an AVX-512 CPU the case runs with
   ONEDNN_MAX_CPU_ISA=AVX2 to reach the AVX2 kernel. Worked around in
   ``models/darts_ops.FactorizedReduce`` (subsample, then a stride-1 conv).
2. ATen's channels_last BatchNorm kernel accumulates its per-channel sums less
   accurately than the NCHW kernel (about 10x the relative error per call, growing with
   |mean| / std); networks amplify it to 100-1000x NCHW's gradient error. Worked around
   in ``models/norm.py`` (every norm runs the NCHW kernel).
3. oneDNN's bf16 channels_last depthwise 3x3 conv with dilation 2 (DARTS's dil_conv_3x3)
   at 8 channels: weight gradient off by ~100 % (the same conv in NCHW: 0.3 %). Worked
   around by running bf16 in NCHW (``federated.loop.use_channels_last``).

    python benchmarks/layout_faults.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CASE = r"""
import sys, torch, torch.nn.functional as F
kind, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
CL = torch.channels_last

def rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()

if kind == "strided_1x1":
    for cin in (2, 4, 6, 8):
        w, x = torch.randn(2 * cin, cin, 1, 1), torch.randn(16, cin, 8, 8)
        wr = w.double().requires_grad_()
        out = F.conv2d(x.double(), wr, stride=2)
        g = torch.randn_like(out)
        out.backward(g)
        worst = 0.0
        for _ in range(20):
            wc = w.clone().contiguous(memory_format=CL).requires_grad_()
            F.conv2d(x.contiguous(memory_format=CL), wc, stride=2).backward(g.float())
            worst = max(worst, rel(wc.grad, wr.grad))
        print(f"  cin {cin}: weight grad error {worst:.1e}", flush=True)
elif kind == "batchnorm":
    for mean in (0.0, 10.0):
        x = torch.randn(32, 8, 32, 32) + mean
        g = torch.randn_like(x)
        xr = x.double().requires_grad_()
        ref = F.batch_norm(xr, None, None, training=True)
        ref.backward(g.double())
        row = []
        for fmt in (torch.contiguous_format, CL):
            xx = x.detach().contiguous(memory_format=fmt).requires_grad_()
            out = F.batch_norm(xx, None, None, training=True)
            out.backward(g.contiguous(memory_format=fmt))
            row.append(f"{rel(out, ref):.1e} / {rel(xx.grad, xr.grad):.1e}")
        print(f"  input mean {mean}: forward / input-grad error NCHW {row[0]}, "
              f"channels_last {row[1]}", flush=True)
elif kind == "bf16_dilated_depthwise":
    w, x = torch.randn(8, 1, 3, 3), torch.randn(16, 8, 32, 32)
    wr = w.double().requires_grad_()
    out = F.conv2d(x.double(), wr, padding=2, dilation=2, groups=8)
    g = torch.randn_like(out)
    out.backward(g)
    row = []
    for fmt in (torch.contiguous_format, CL):
        wc = w.clone().contiguous(memory_format=fmt).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            o = F.conv2d(x.contiguous(memory_format=fmt), wc, padding=2, dilation=2, groups=8)
        o.float().backward(g.float())
        row.append(rel(wc.grad, wr.grad))
    print(f"  weight grad error NCHW {row[0]:.1e}, channels_last {row[1]:.1e}", flush=True)
"""


def avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def run(kind: str, threads: int, isa: str | None = None) -> None:
    env = dict(os.environ) | ({"ONEDNN_MAX_CPU_ISA": isa} if isa else {})
    print(f"{kind}, {threads} thread(s){', ISA ' + isa if isa else ''}:", flush=True)
    proc = subprocess.run(
        [sys.executable, "-c", CASE, kind, str(threads)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(proc.stdout, end="")
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        print(f"  process died: exit {proc.returncode}, {tail[0]}")


def main() -> None:
    for threads in (1, 2):
        run("strided_1x1", threads, "AVX2" if avx512() else None)
    run("batchnorm", 2)
    run("bf16_dilated_depthwise", 2)


if __name__ == "__main__":
    main()
