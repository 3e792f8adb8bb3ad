"""Whether a search searched: the figures that tell a learning supernet and a moving
architecture from a random draw, and the verdict the tables print beside a NAS row::

    probs = softmax(alpha)                      # layers x ops
    alpha_summary(probs)    -> {"alpha_entropy": 1.38, "alpha_max_prob": 0.27}
    search_warnings(final_train_loss=2.25, num_classes=10, probs=probs)
        -> ["near_chance: ...", "alpha_uniform: ..."]

A supernet whose train loss ends within 10 % of chance (ln C) has not learned anything a
child could inherit, and an alpha that never left uniform derives a random child: a row
built on either is not a search result, whatever its accuracy.
"""

from __future__ import annotations

import math

import torch

NEAR_CHANCE = 0.9  # a search loss >= this share of ln(C) is "near chance"
UNIFORM_MARGIN = 0.05  # alpha "stayed uniform" if no layer's top op beats 1/K by this


def alpha_summary(probs: torch.Tensor) -> dict[str, float]:
    """Mean per-layer entropy (nats; ln K is uniform) and the largest op probability of
    any layer."""
    p = probs.double().clamp_min(1e-12)
    entropy = -(p * p.log()).sum(dim=1)
    return {
        "alpha_entropy": float(entropy.mean()),
        "alpha_max_prob": float(probs.max()),
    }


def search_warnings(final_train_loss: float, num_classes: int, probs: torch.Tensor) -> list[str]:
    """Why a search's result should not be read as one (empty: it searched)."""
    warnings = []
    chance = math.log(num_classes)
    if not final_train_loss < NEAR_CHANCE * chance:
        warnings.append(
            f"near_chance: supernet train loss {final_train_loss:.3f} at the end of the search "
            f"(chance ln {num_classes} = {chance:.3f})"
        )
    k = probs.shape[1]
    top = float(probs.max())
    if top < 1 / k + UNIFORM_MARGIN:
        warnings.append(
            f"alpha_uniform: largest op probability {top:.3f} (uniform {1 / k:.3f}): "
            "the derived child is a random draw"
        )
    return warnings
