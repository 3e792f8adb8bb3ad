"""DFNAS's per-run figure: how its architecture parameters moved, round by round, and
whether the search was a search (supernet loss against chance, alpha's entropy)::

    architecture_evolution("…/dfnas/seed0/architecture.json", "results/…/architecture/…")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dfnas.plotting import plt, save


def architecture_evolution(arch_path: str | Path, stem: str | Path) -> list[Path]:
    """DFNAS: each layer's op probabilities over the search rounds and the derived child,
    above the search's health: supernet train loss against chance, alpha's mean entropy
    and largest probability (a flat loss at chance or a flat alpha is no search)."""
    arch = json.loads(Path(arch_path).read_text())
    probs = np.array(arch["alpha_probs"])  # rounds x layers x ops
    n_layers, n_ops = probs.shape[1], probs.shape[2]
    cols = min(4, n_layers)
    rows = -(-n_layers // cols)
    fig = plt.figure(figsize=(3 * cols, 2.2 * (rows + 1)))
    grid = fig.add_gridspec(rows + 1, cols)
    rounds = np.arange(1, probs.shape[0] + 1)
    for layer in range(n_layers):
        ax = fig.add_subplot(grid[layer // cols, layer % cols])
        for op_i, op in enumerate(arch["ops"]):
            ax.plot(rounds, probs[:, layer, op_i], label=op)
        spec = arch["layers"][layer]
        ax.set_ylim(0, 1)
        ax.set_title(
            f"layer {layer} ({spec['channels']}ch, s{spec['stride']}): {arch['chosen'][layer]}",
            fontsize=8,
        )
        if layer == 0:
            ax.legend(fontsize=6)
            ax.set_ylabel("op probability")
    half = max(1, cols // 2)
    loss_ax = fig.add_subplot(grid[rows, :half])
    chance = np.log(arch["num_classes"])
    loss_ax.plot(rounds, arch["search_train_loss"], marker="o", label="supernet train loss")
    loss_ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance (ln {arch['num_classes']})")
    loss_ax.axhline(0.9 * chance, color="grey", ls=":", lw=1, label="near-chance line")
    loss_ax.set_xlabel("search round")
    loss_ax.legend(fontsize=6)
    alpha_ax = fig.add_subplot(grid[rows, half:])
    p = np.clip(probs, 1e-12, 1)
    entropy = -(p * np.log(p)).sum(axis=2).mean(axis=1)
    alpha_ax.plot(rounds, entropy / np.log(n_ops), marker="o", label="mean entropy / ln K")
    alpha_ax.plot(rounds, probs.max(axis=(1, 2)), marker="s", label="largest op probability")
    alpha_ax.axhline(1 / n_ops, color="grey", ls="--", lw=1, label="uniform probability")
    alpha_ax.set_ylim(0, 1.05)
    alpha_ax.set_xlabel("search round")
    alpha_ax.legend(fontsize=6)
    budgets = ", ".join(
        f"{k} {v['child']:.4g} / {v['limit']:.4g}" for k, v in arch["budgets"].items()
    )
    fig.suptitle(
        f"derived child: {arch['child_macs'] / 1e6:.3f} MMACs"
        + (f"; budget {budgets}" if budgets else ""),
        fontsize=9,
    )
    fig.tight_layout()
    return save(fig, stem)
