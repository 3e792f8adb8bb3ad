"""What a client costs: bytes on the wire, seconds, and peak memory.

Bytes are those of the tensors exchanged (numel x element size), the floor any real
transport pays. Seconds are wall time and process CPU time, with CUDA synchronized before
every reading on a GPU. ``peak_memory_bytes`` is the whole process's peak: RSS on CPU
(torch, the dataset and every simulated client), ``torch.cuda.max_memory_allocated`` on a
GPU. What one client's training holds is counted apart, in ``cost.memory``.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch


def tensor_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


@dataclass
class Stopwatch:
    """Wall and CPU seconds of a block; synchronizes CUDA so GPU work is inside it."""

    device: torch.device
    wall: float = 0.0
    cpu: float = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __enter__(self) -> Stopwatch:
        self._sync()
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync()
        self.wall += time.perf_counter() - self._wall0
        self.cpu += time.process_time() - self._cpu0
