"""Training precision: full fp32, or bf16 autocast of the network's forward pass.

bf16 is a trade, not a free speed-up, so it is an option (``training.precision``) and
fp32 is the default. On this project's CPUs (AVX-512 with AMX) it made a dense conv
net's local step 1.4-1.8x faster (FedAvg CNN, ResNet-20) and a depthwise one's 1.6x
slower (ShuffleNetV2, the DARTS supernet: oneDNN's bf16 depthwise kernels are slow); it
is untried on a GPU. Its effect on accuracy is measured per experiment in docs/speed.md
("Precision"). A comparison must give every method the same precision.

Only the forward pass runs under autocast, as torch's AMP guide asks: backward then runs
each op in its forward's dtype, and the optimizer updates fp32 weights. The network's
output is cast back to fp32, so every method's loss (and DSNAS's dL/dZ, MiLeNAS's alpha
gradient) is computed in fp32 without knowing about precision at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from dfnas.errors import ConfigError


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run, before any round starts (TrainConfig
    has checked the name)."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"training.precision: bf16 is not supported on {device}; use fp32")


@contextlib.contextmanager
def autocast_forward(net: nn.Module, precision: str) -> Iterator[None]:
    """Within the block, ``net(...)`` runs its forward under bf16 autocast and returns fp32;
    afterwards ``net`` is exactly as it was. fp32 leaves ``net`` untouched.

    Done with a pair of forward hooks rather than a wrapped ``forward``: a copy of the
    network made inside the block (FedNAS counts its FLOPs on one) must run its own
    forward, and hooks, unlike a closure over ``net``, carry no reference to it."""
    if precision == "fp32":
        yield
        return
    device_type = next(net.parameters()).device.type
    open_casts: list[torch.autocast] = []  # one per forward in flight (LIFO)

    def enter(module: nn.Module, args: tuple) -> None:
        cast = torch.autocast(device_type, dtype=torch.bfloat16)
        cast.__enter__()
        open_casts.append(cast)

    def leave(module: nn.Module, args: tuple, out):
        open_casts.pop().__exit__(None, None, None)
        return out.float() if isinstance(out, torch.Tensor) else out

    hooks = [
        net.register_forward_pre_hook(enter),
        net.register_forward_hook(leave, always_call=True),  # closes autocast on errors too
    ]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
