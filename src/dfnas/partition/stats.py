"""How heterogeneous a partition is, in the measures FL papers report."""

from __future__ import annotations

import numpy as np


def label_counts(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """clients x classes matrix of sample counts."""
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def heterogeneity(counts: np.ndarray) -> dict:
    """Size spread and label skew of a clients x classes count matrix.

    ``mean_tv_distance``: mean total-variation distance between each client's label
    distribution and the pooled one (0 = IID, 1 = disjoint); ``mean_effective_classes``:
    exp(entropy) of the client label distribution, i.e. how many classes a client
    effectively sees.
    """
    sizes = counts.sum(axis=1)
    pooled = counts.sum(axis=0) / counts.sum()
    dist = counts / np.maximum(sizes[:, None], 1)
    tv = 0.5 * np.abs(dist - pooled).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nansum(np.where(dist > 0, dist * np.log(dist), 0.0), axis=1)
    return {
        "num_clients": int(len(sizes)),
        "num_samples": int(sizes.sum()),
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "size_mean": float(sizes.mean()),
        "size_std": float(sizes.std()),
        "classes_per_client_mean": float((counts > 0).sum(axis=1).mean()),
        "mean_effective_classes": float(np.exp(ent).mean()),
        "mean_tv_distance": float(tv.mean()),
        "max_tv_distance": float(tv.max()),
    }
