"""Federated BatchNorm re-estimation: the moments a client sends and how the server pools
them (offered to methods by ``federated.context.ServerContext.recalibrate_bn``).

A network whose architecture just changed (DFNAS's child, cut out of the supernet) carries
running statistics accumulated over other paths. DSNAS resets and re-estimates them; here
each client runs forward passes over (at most ``max_batches`` of) its local train data and
returns, per BN layer, the count, sum and sum of squares of the layer's input per channel.
The server adds them up, so the statistics are those of the union of the clients' data::

    mean = sum_k S1_k / N,   var = sum_k S2_k / N - mean^2   (unbiased: * N / (N - 1))

Averaging the clients' running variances instead would drop the spread of their means,
which on non-IID clients underestimates the variance. The forward FLOPs and the bytes of
the moments are added to the round's costs when the work is part of the method (the
child's derivation), not when it only serves a measurement (a search round's accuracy).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def bn_moments(model: nn.Module, batches) -> dict[str, torch.Tensor]:
    """Per BN layer ``name``: ``name.count`` (values per channel), ``name.sum`` and
    ``name.sumsq`` (per channel, float64) of the layer's input over ``batches``, in train
    mode (each layer normalizes with its batch's statistics, as a calibration pass does)."""
    moments: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str):
        def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].double()
            dims = [0, *range(2, x.dim())]
            add = {
                f"{name}.count": torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype),
                f"{name}.sum": x.sum(dims),
                f"{name}.sumsq": x.square().sum(dims),
            }
            for key, value in add.items():
                moments[key] = moments[key] + value if key in moments else value

        return record

    for name, module in model.named_modules():
        if isinstance(module, _BatchNorm):
            handles.append(module.register_forward_pre_hook(hook(name)))
    was_training = model.training
    model.train()
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return moments


@torch.no_grad()
def set_bn_statistics(model: nn.Module, moments: dict[str, torch.Tensor]) -> None:
    """Running statistics of every BN layer from summed moments (see module doc)."""
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm) or f"{name}.count" not in moments:
            continue
        n = moments[f"{name}.count"]
        mean = moments[f"{name}.sum"] / n
        var = (moments[f"{name}.sumsq"] / n - mean.square()).clamp_min(0)
        var = var * n / (n - 1).clamp_min(1)  # unbiased, as BatchNorm keeps it
        module.running_mean.copy_(mean)
        module.running_var.copy_(var)
        module.num_batches_tracked.zero_()
