"""Server aggregation: the sample-weighted mean (McMahan et al. 2017, eq. in Alg. 1).

Every floating entry of a state dict (weights, BN running statistics, architecture logits
or any extra tensor a method exchanges) is averaged with weights n_k / sum n_k over the
clients that sent it: all that replied, unless a method sends each client only part of
the model (DFNAS's path-only communication), where an entry no client sent is left as it
was. Integer entries (BN's ``num_batches_tracked``) take the maximum,
which is what one client training the same number of steps would hold.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

State = dict[str, torch.Tensor]


def weighted_mean(states: list[Mapping[str, torch.Tensor]], weights: list[float]) -> State:
    """Reference implementation, used by tests and small callers."""
    agg = StreamingMean()
    for state, w in zip(states, weights, strict=True):
        agg.add(state, w)
    return agg.result()


class StreamingMean:
    """Accumulate replies one by one, so memory holds one sum, not every client's model.

    Sums are kept in float64: with hundreds of clients the float32 sum of small updates
    loses digits the mean needs.
    """

    def __init__(self) -> None:
        self._sum: State = {}
        self._total: dict[str, float] = {}

    def add(self, state: Mapping[str, torch.Tensor], weight: float) -> None:
        if weight <= 0:
            raise ValueError(f"client weight must be positive, got {weight}")
        for key, t in state.items():
            self._total[key] = self._total.get(key, 0.0) + weight
            t = t.detach()
            if t.is_floating_point():
                acc = self._sum.get(key)
                if acc is None:
                    self._sum[key] = t.to(torch.float64) * weight
                else:
                    acc.add_(t.to(torch.float64), alpha=weight)
            else:
                prev = self._sum.get(key)
                self._sum[key] = t.clone() if prev is None else torch.maximum(prev, t)

    def result(self, like: Mapping[str, torch.Tensor] | None = None) -> State:
        """The mean, cast back to each entry's dtype (``like`` gives dtypes and layout)."""
        if not self._total:
            raise ValueError("no client replied; nothing to aggregate")
        out: State = {}
        for key, acc in self._sum.items():
            ref = like[key] if like is not None else None
            if acc.is_floating_point():
                mean = acc / self._total[key]
                out[key] = mean.to(ref.dtype if ref is not None else torch.float32)
            else:
                out[key] = acc
        return out
