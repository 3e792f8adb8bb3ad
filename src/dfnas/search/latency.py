"""Measured latency of every candidate block on the machine this runs on.

The paper's "device type" input: a latency budget needs per-op latencies of the target
device. This measures them here (batch 1 inference, median of repeats, after warm-up),
which is exact when the target is this machine and a stand-in otherwise: copy a table
measured on the real device into the path the workflow expects to use that device's.
"""

from __future__ import annotations

import platform
import statistics
import time

import torch
from torch import nn

from dfnas.models.shufflenet_blocks import OPS
from dfnas.search.shufflenet_supernet import ShuffleSupernet, _layer_input_shapes, _out_shape


def _time_ms(module: nn.Module, x: torch.Tensor, repeats: int, device: torch.device) -> float:
    times = []
    with torch.no_grad():
        for _ in range(3):
            module(x)
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            module(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure_latency_table(
    net: ShuffleSupernet, device: torch.device, repeats: int = 30, channels_last: bool = True
) -> dict:
    net = net.to(device).eval()
    fmt = torch.channels_last if channels_last and device.type == "cpu" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    shapes = _layer_input_shapes(net)

    def probe(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(1, *shape, device=device).contiguous(memory_format=fmt)

    op_ms = [
        [_time_ms(op, probe(shapes[i]), repeats, device) for op in layer.ops]
        for i, layer in enumerate(net.layers)
    ]
    tail = nn.Sequential(net.head, net.classifier)
    fixed = _time_ms(net.stem, probe(net.in_shape), repeats, device) + _time_ms(
        tail, probe(_out_shape(net)), repeats, device
    )
    return {
        "ops": list(OPS),
        "op_ms": op_ms,
        "fixed_ms": fixed,
        "batch": 1,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "in_shape": list(net.in_shape),
        "stages": net.stages,
    }
