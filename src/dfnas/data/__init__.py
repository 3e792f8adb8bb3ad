"""Datasets: every loader returns an ``ImageDataset`` (uint8 NCHW images, labels, class
names, normalization statistics, optional natural client ids)::

    from dfnas.data import load_dataset
    ds = load_dataset("cifar10", root="data")          # or "digits", no files needed
    ds = load_dataset("mine", root="data", loader="npz", path="mine.npz")
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from dfnas.data import cifar, digits, femnist, mnist, npz  # noqa: F401  (registration)
from dfnas.data.base import ImageDataset, load_cached
from dfnas.data.registry import DATASETS
from dfnas.errors import ConfigError

__all__ = [
    "DATASETS",
    "ImageDataset",
    "load_cached",
    "load_dataset",
    "KNOWN_SHAPES",
    "KNOWN_TRAIN_SIZES",
]

# Train-set sizes known without reading any file, so that impossible partitions (more
# clients than samples) are refused when the workflow starts, before any job runs.
KNOWN_TRAIN_SIZES = {
    "digits": 1437,
    "cifar10": 50_000,
    "cifar100": 50_000,
    "mnist": 60_000,
    "fashion_mnist": 60_000,
}

# Input shapes known without reading any file: a device budget is checked against the
# space at the real resolution when the workflow starts.
KNOWN_SHAPES = {
    "digits": (1, 8, 8),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
}


def load_dataset(name: str, root: str | Path = "data", **options: Any) -> ImageDataset:
    """Load dataset ``name`` with loader ``options.pop('loader', name)``."""
    loader_name = options.pop("loader", name)
    loader = DATASETS.get(loader_name)
    try:
        ds = loader(Path(root), **options)
    except TypeError as exc:
        raise ConfigError(f"datasets.{name}: bad options for loader '{loader_name}' ({exc})") from None
    # a dataset is known by its config name (two npz files are two datasets)
    return ds if ds.name == name else replace(ds, name=name)
