"""The client optimizers of a search: SGD on the weights and Adam on alpha, kept apart
so each method steps them in its own order (MiLeNAS: alpha first; DSNAS: both from one
loss), and the weight-decay groups DSNAS trains with."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SearchOptimizers:
    """A search method's client optimizers: one for the weights, one for alpha."""

    weights: torch.optim.Optimizer
    alpha: torch.optim.Optimizer


def decay_groups(params: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """SGD parameter groups with no weight decay on BatchNorm parameters and biases (the
    1-d tensors), as DSNAS trains: decaying a BN scale only fights the normalization."""
    decay = [p for _, p in params if p.dim() > 1]
    no_decay = [p for _, p in params if p.dim() <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
