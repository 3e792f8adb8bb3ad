"""Datasets: every loader returns an ``ImageDataset`` (uint8 NCHW images, labels, class
names, normalization statistics, optional natural client ids)::

    from dfnas.data import load_dataset
    ds = load_dataset("cifar10", root="data")          # or "digits", no files needed
    ds = load_dataset("mine", root="data", loader="npz", path="mine.npz")
    ds = load_dataset("cifar10_16", root="data", loader="cifar10", resize=16)

``resize`` is the one option every loader takes: images are box-downsampled (the mean of
each k x k block) to the given side, as NAS-Bench-201's ImageNet16 and the downsampled
ImageNet variants are. It turns CIFAR-10 into a CPU proxy that keeps its classes, its
samples and so its non-IID partitions, at a quarter of the convolution cost.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

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
    "KNOWN_CLASSES",
    "box_downsample",
    "known_classes",
    "known_shape",
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

# Input shapes and class counts known without reading any file: a device budget is
# checked against the space at the real resolution and head when the workflow starts.
KNOWN_SHAPES = {
    "digits": (1, 8, 8),
    "cifar10": (3, 32, 32),
    "cifar100": (3, 32, 32),
    "mnist": (1, 28, 28),
    "fashion_mnist": (1, 28, 28),
}


KNOWN_CLASSES = {
    "digits": 10,
    "cifar10": 10,
    "cifar100": 100,
    "mnist": 10,
    "fashion_mnist": 10,
}


def known_classes(name: str, options: dict) -> int | None:
    """The class count of a configured dataset where it is known without reading it."""
    return KNOWN_CLASSES.get(options.get("loader", name))


def known_shape(name: str, options: dict) -> tuple[int, int, int] | None:
    """The input shape of a configured dataset where it is known without reading it."""
    shape = KNOWN_SHAPES.get(options.get("loader", name))
    if shape is None or "resize" not in options:
        return shape
    return (shape[0], int(options["resize"]), int(options["resize"]))


def box_downsample(images: np.ndarray, side: int, what: str) -> np.ndarray:
    """uint8 (N, C, H, W) -> (N, C, side, side) by block means, rounded to nearest.

    Only whole blocks: an integer factor keeps every source pixel's weight equal, which
    interpolation at a fractional factor would not.
    """
    h, w = images.shape[2:]
    if side < 1 or h % side or w % side:
        raise ConfigError(
            f"{what}.resize: {side} must divide the image size {h}x{w} (box downsampling "
            "by a whole factor)"
        )
    fh, fw = h // side, w // side
    blocks = images.reshape(len(images), images.shape[1], side, fh, side, fw)
    return np.rint(blocks.mean(axis=(3, 5), dtype=np.float64)).astype(np.uint8)


def load_dataset(name: str, root: str | Path = "data", **options: Any) -> ImageDataset:
    """Load dataset ``name`` with loader ``options.pop('loader', name)``."""
    loader_name = options.pop("loader", name)
    resize = options.pop("resize", None)
    loader = DATASETS.get(loader_name)
    try:
        ds = loader(Path(root), **options)
    except TypeError as exc:
        raise ConfigError(f"datasets.{name}: bad options for loader '{loader_name}' ({exc})") from None
    if resize is not None:
        what = f"datasets.{name}"
        # statistics are recomputed on the downsampled train set (mean=() asks for that)
        ds = replace(
            ds,
            x_train=box_downsample(ds.x_train, int(resize), what),
            x_test=box_downsample(ds.x_test, int(resize), what),
            mean=(),
            std=(),
        )
    # a dataset is known by its config name (two npz files are two datasets)
    return ds if ds.name == name else replace(ds, name=name)
