"""The DSNAS local step (Hu et al., CVPR 2020, arXiv 2002.09128), as DFNAS runs it on
every client.

Per step and per choice layer l a one-hot Z_l is drawn from Categorical(softmax(alpha_l)).
Only the chosen op runs; its output is multiplied by Z_l (a leaf tensor equal to 1), so
one backward gives both the weight gradients and dL/dZ_l = <dL/dy_l, op(x)>. The
architecture gradient is

    g_alpha_l = dL/dZ_l * grad_alpha log p(Z_l) = dL/dZ_l * (onehot(c_l) - softmax(alpha_l)),

which is the score-function gradient of E_Z[L] with L replaced by its first-order
expansion in Z (exact when L is linear in each Z_l; DSNAS eq. 9-11). One forward and one
backward per step: the cost of a single path. Weights take an SGD step, alpha an Adam step.

A device budget enters as a hinge on the expected cost, added to the alpha loss:

    coef * max(0, E_p[cost] - budget) / budget,  E_p[cost] = fixed + sum_l p_l . cost_l
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sample_path(
    alpha: Tensor, generator: torch.Generator, fixed: dict[int, int] | None = None
) -> list[int]:
    """One op per layer from softmax(alpha); fixed layers always take their op."""
    probs = F.softmax(alpha.detach().double().cpu(), dim=-1)
    path = torch.multinomial(probs, 1, generator=generator).squeeze(1).tolist()
    for layer, op in (fixed or {}).items():
        path[layer] = op
    return path


def score_gradient(alpha: Tensor, path: list[int], dl_dz: Tensor) -> Tensor:
    """sum_l dL/dZ_l * grad_alpha log p(Z_l): rows of layers that were not sampled (fixed
    layers) get dl_dz = 0."""
    probs = F.softmax(alpha.detach(), dim=-1)
    onehot = F.one_hot(torch.as_tensor(path, device=alpha.device), alpha.shape[1]).to(probs)
    return dl_dz.view(-1, 1).to(probs) * (onehot - probs)


def expected_cost(alpha: Tensor, op_costs: Tensor, fixed_cost: float) -> Tensor:
    probs = F.softmax(alpha, dim=-1)
    return fixed_cost + (probs * op_costs.to(probs)).sum()


def budget_gradient(
    alpha: Tensor, op_costs: Tensor, fixed_cost: float, budget: float, coef: float
) -> Tensor:
    """Gradient of coef * max(0, E[cost] - budget) / budget with respect to alpha."""
    a = alpha.detach().clone().requires_grad_(True)
    penalty = coef * F.relu(expected_cost(a, op_costs, fixed_cost) - budget) / budget
    (grad,) = torch.autograd.grad(penalty, a)
    return grad


def dsnas_step(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    path: list[int],
    searching: list[bool],
) -> tuple[Tensor, Tensor]:
    """Forward and backward one path. Returns (loss, dL/dZ per layer); gradients of the
    weights are left in ``.grad`` for the caller's optimizer. ``searching[l]`` says
    whether layer l still carries a Z (fixed layers do not)."""
    z = [torch.ones((), device=x.device, requires_grad=True) if s else None for s in searching]
    loss = F.cross_entropy(net(x, path, z), y)
    loss.backward()
    dl_dz = torch.stack(
        [
            zi.grad.detach() if zi is not None and zi.grad is not None else x.new_zeros(())
            for zi in z
        ]
    )
    return loss.detach(), dl_dz
