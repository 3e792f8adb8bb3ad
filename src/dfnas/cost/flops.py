"""FLOPs counted from the operations (torch.utils.flop_counter), never derived from time.

``FlopCounterMode`` counts the matmul and convolution FLOPs of forward and backward, the
usual convention (elementwise, normalization and optimizer updates are not counted; they
are a few percent of a conv net's work). Counts are linear in the batch size, so a model's
per-sample cost is counted once on a 2-sample batch and reused for every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count
from torch.utils.flop_counter import conv_backward_flop as _torch_conv_backward_flop

# 2 samples, not 1: BatchNorm in train mode needs more than one value per channel
_PROBE_BATCH = 2


def _conv_backward_flop(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    _groups,
    output_mask,
    out_shape,
    **kwargs,
) -> int:
    """torch's formula counts a grouped conv's weight gradient as if the conv were dense
    (``groups`` times too many: 10x for a depthwise 3x3 over 10 channels). For a plain
    conv, the input gradient and the weight gradient each cost what the forward costs."""
    if transposed:
        return _torch_conv_backward_flop(
            grad_out_shape,
            x_shape,
            w_shape,
            _bias,
            _stride,
            _padding,
            _dilation,
            transposed,
            _output_padding,
            _groups,
            output_mask,
            out_shape,
            **kwargs,
        )
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=False)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode with the grouped-conv backward count corrected."""
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flop}
    )


def _probe(in_shape: tuple[int, int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(_PROBE_BATCH, *in_shape, generator=gen).to(device)


def forward_flops(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """FLOPs of one forward pass of one sample in eval mode (MACs = FLOPs / 2)."""
    model = copy.deepcopy(model).eval()
    x = _probe(in_shape, next(model.parameters()).device)
    with torch.no_grad(), flop_counter() as counter:
        model(x)
    return counter.get_total_flops() // _PROBE_BATCH


def train_flops(
    model: nn.Module,
    in_shape: tuple[int, int, int],
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> int:
    """FLOPs of one forward and backward pass per sample, on a copy of ``model``
    (so BN statistics and gradients of the real one are untouched)."""
    model = copy.deepcopy(model).train()
    x = _probe(in_shape, next(model.parameters()).device)
    with flop_counter() as counter:
        out = loss_fn(model, x) if loss_fn else model(x).float().logsumexp(dim=1).mean()
        out.backward()
    return counter.get_total_flops() // _PROBE_BATCH


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
