"""A client's training memory, counted exactly: the bytes one client's local training
holds, apart from the process around it (torch itself, the dataset, the other simulated
clients), so that DARTS's all-ops-at-once search step can be told from one DSNAS path::

    meter = TrainingMemory()
    for x, y in batches:
        with meter.step(model, optimizer):
            train_step(model, x, y, optimizer, ctx)
    meter.peak_bytes, meter.parts   # the largest step, and its four parts

Per step, four parts, each counted from the tensors themselves (bytes of their storages,
each storage once):

- ``params``: the network's parameters and buffers;
- ``grads``: the gradients present after the step;
- ``optimizer``: every tensor in the optimizers' state (momentum, Adam moments);
- ``activations``: the peak of the tensors autograd holds for backward, followed with
  saved-tensor hooks as they are saved and as the graph frees them (a MiLeNAS step's three
  passes each peak on their own). Tensors that are parameters count under ``params``.

Their sum is what a device must hold for the step if none of the four is freed before
the others are needed, the usual accounting of training memory (weights + gradients +
optimizer state + activations); allocator slack and temporary workspaces are not in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

PARTS = ("params", "grads", "optimizer", "activations")


def _storage(t: torch.Tensor) -> tuple[int, int]:
    """(address, bytes) of a tensor's storage: a view holds its whole storage alive."""
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def storage_bytes(tensors: Iterator[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors``."""
    seen: dict[int, int] = {}
    for t in tensors:
        ptr, size = _storage(t)
        seen[ptr] = size
    return sum(seen.values())


def optimizers_in(obj: Any) -> list[torch.optim.Optimizer]:
    """The optimizers in whatever a method's ``make_optimizer`` returned (one, or a
    container of several such as ``SearchOptimizers``)."""
    if isinstance(obj, torch.optim.Optimizer):
        return [obj]
    if isinstance(obj, list | tuple):
        return [o for v in obj for o in optimizers_in(v)]
    values = obj.values() if isinstance(obj, dict) else getattr(obj, "__dict__", {}).values()
    return [o for v in values for o in optimizers_in(v)] if values else []


def optimizer_state_tensors(optimizer: Any) -> Iterator[torch.Tensor]:
    for opt in optimizers_in(optimizer):
        for state in opt.state.values():
            yield from (v for v in state.values() if torch.is_tensor(v))


class _Held:
    """A saved tensor, handed back to autograd; released when the graph drops it."""

    __slots__ = ("tensor", "release")

    def __init__(self, tensor: torch.Tensor, release: Any) -> None:
        self.tensor, self.release = tensor, release

    def __del__(self) -> None:
        self.release()


class TrainingMemory:
    """The largest step's training memory over every step it measured (bytes)."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self.parts = dict.fromkeys(PARTS, 0)

    @contextlib.contextmanager
    def step(self, model: nn.Module, optimizer: Any) -> Iterator[None]:
        state = [*model.parameters(), *model.buffers()]
        param_ptrs = {_storage(t)[0] for t in state}
        live: dict[int, list[int]] = {}  # storage address -> [holders, bytes]
        now = peak = 0

        def release(ptr: int) -> None:
            nonlocal now
            entry = live[ptr]
            entry[0] -= 1
            if entry[0] == 0:
                now -= entry[1]
                del live[ptr]

        def pack(t: torch.Tensor) -> Any:
            nonlocal now, peak
            ptr, size = _storage(t)
            if ptr in param_ptrs or size == 0:
                return t
            if ptr in live:
                live[ptr][0] += 1
            else:
                live[ptr] = [1, size]
                now += size
                peak = max(peak, now)
            # detached: holding an output with its grad_fn would close a reference cycle
            # through the graph that Python cannot collect (the graph would leak)
            return _Held(t.detach(), lambda: release(ptr))

        def unpack(held: Any) -> torch.Tensor:
            return held.tensor if isinstance(held, _Held) else held

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            yield
        parts = {
            "params": storage_bytes(iter(state)),
            "grads": storage_bytes(p.grad for p in model.parameters() if p.grad is not None),
            "optimizer": storage_bytes(optimizer_state_tensors(optimizer)),
            "activations": peak,
        }
        total = sum(parts.values())
        if total > self.peak_bytes:
            self.peak_bytes, self.parts = total, parts
