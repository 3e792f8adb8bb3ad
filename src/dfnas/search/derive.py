"""Deriving the child: argmax(alpha) per layer, then repaired until every budget holds.

The expected-cost term steers the search toward the budget, but an argmax can still land
above it. The repair swaps ops for cheaper ones, each time taking the swap that gives up
the least log-probability per unit of budget excess removed, so the derived child is
within budget by construction (or the budget is refused up front as unreachable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dfnas.errors import ConfigError
from dfnas.models.shufflenet_blocks import OPS


@dataclass(frozen=True)
class Budget:
    name: str  # "macs" or "latency_ms"
    limit: float
    op_costs: torch.Tensor  # layers x ops
    fixed: float

    def cost(self, path: list[int]) -> float:
        return self.fixed + float(sum(self.op_costs[i, c] for i, c in enumerate(path)))

    def cheapest(self) -> float:
        return self.fixed + float(self.op_costs.min(dim=1).values.sum())

    def check_reachable(self) -> None:
        if self.cheapest() > self.limit:
            raise ConfigError(
                f"options.budget_{self.name}: {self.limit:g} is below the cheapest child "
                f"of this space ({self.cheapest():g})"
            )


def derive_path(alpha: torch.Tensor, budgets: list[Budget]) -> tuple[list[int], list[dict]]:
    """(path, repairs): the argmax path made to fit every budget."""
    logp = F.log_softmax(alpha.detach().double().cpu(), dim=-1)
    path = logp.argmax(dim=1).tolist()
    repairs = []
    for budget in budgets:
        budget.check_reachable()
    while True:
        over = [b for b in budgets if b.cost(path) > b.limit]
        if not over:
            return path, repairs
        best = None
        for layer, current in enumerate(path):
            for op in range(len(OPS)):
                # excess removed across all violated budgets, each relative to its limit
                gain = sum(
                    float(b.op_costs[layer, current] - b.op_costs[layer, op]) / b.limit
                    for b in over
                )
                if gain <= 0:
                    continue
                loss = float(logp[layer, current] - logp[layer, op])
                score = loss / gain
                if best is None or score < best[0]:
                    best = (score, layer, op)
        if best is None:  # unreachable: check_reachable should have caught it
            raise ConfigError("no cheaper op reduces the cost further; budget unreachable")
        _, layer, op = best
        repairs.append({"layer": layer, "from": OPS[path[layer]], "to": OPS[op]})
        path[layer] = op
