"""Accuracy and mean cross-entropy of a model on a labelled set."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.federated.data import DeviceData


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: DeviceData,
    batch_size: int,
    x: torch.Tensor | None = None,
    y: torch.Tensor | None = None,
) -> tuple[float, float]:
    """(accuracy in 0-1, mean loss) on the global test set, or on (x, y) if given, in eval
    mode: BN layers use their running statistics, never the test batch's."""
    was_training = model.training
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for xb, yb in data.test_batches(batch_size, x, y):
        out = model(xb)
        loss += F.cross_entropy(out, yb, reduction="sum").item()
        correct += (out.argmax(dim=1) == yb).sum().item()
        n += len(yb)
    model.train(was_training)
    if n == 0:
        return float("nan"), float("nan")
    return correct / n, loss / n
