"""The one in-memory form every dataset loader returns.

Images stay uint8 (N, C, H, W) until a batch is formed, so a CIFAR-10 copy costs 150 MB
rather than 600 MB, and normalization statistics travel with the data instead of being
hard-coded per model.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dfnas.errors import CacheError, DatasetError
from dfnas.io import atomic_path, read_json


@dataclass(frozen=True)
class ImageDataset:
    """Train and test arrays of one image classification dataset.

    ``client_ids`` gives each train sample's natural owner (a FEMNIST writer, or an id
    supplied in an npz file); it is what the ``natural`` partitioner splits on.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    client_ids: np.ndarray | None = None
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        check_arrays(self.name, self.x_train, self.y_train, len(self.classes), "train")
        check_arrays(self.name, self.x_test, self.y_test, len(self.classes), "test")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DatasetError(
                f"{self.name}: train images {self.x_train.shape[1:]} and test images "
                f"{self.x_test.shape[1:]} differ in shape"
            )
        if self.client_ids is not None and len(self.client_ids) != len(self.y_train):
            raise DatasetError(
                f"{self.name}: client_ids has {len(self.client_ids)} entries, "
                f"expected one per train sample ({len(self.y_train)})"
            )
        if not self.mean:
            mean, std = channel_stats(self.x_train)
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def info(self) -> dict:
        """A JSON-ready summary, saved beside the cached arrays."""
        return {
            "name": self.name,
            "num_train": len(self.y_train),
            "num_test": len(self.y_test),
            "in_shape": list(self.in_shape),
            "classes": list(self.classes),
            "mean": list(self.mean),
            "std": list(self.std),
            "has_client_ids": self.client_ids is not None,
            "train_label_counts": np.bincount(self.y_train, minlength=self.num_classes).tolist(),
        }

    def save(self, path: str | Path) -> None:
        arrays = {
            "name": np.array(self.name),
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_test": self.x_test,
            "y_test": self.y_test,
            "classes": np.array(self.classes),
            "mean": np.array(self.mean),
            "std": np.array(self.std),
        }
        if self.client_ids is not None:
            arrays["client_ids"] = self.client_ids
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


REBUILD = "rerun the workflow, which rebuilds it at start (or delete its folder)"


def verify_cache(path: str | Path) -> None:
    """Refuse a ``data.npz`` whose bytes differ from those the dataset stage wrote (its
    SHA-256 is in ``info.json`` beside it), before any array of it is used: the workflow
    rebuilds such a cache at start (``dfnas.caches``). Caches written before the digest
    was recorded are not checked."""
    path = Path(path)
    info = path.with_name("info.json")
    if not path.exists() or not info.exists():
        return
    try:
        expected = read_json(info).get("sha256")
    except ValueError:
        raise CacheError(path, f"its record {info.name} is not readable JSON; {REBUILD}") from None
    if expected is not None and file_sha256(path) != expected:
        raise CacheError(
            path,
            "contents changed since the dataset stage wrote it (SHA-256 differs from "
            f"info.json); {REBUILD}",
        )


def load_cached(path: str | Path) -> ImageDataset:
    """Read a dataset written by ``ImageDataset.save`` (the dataset stage's output). A
    path with no file is the caller's mistake, not a damaged cache: it is not rebuilt."""
    if not Path(path).is_file():
        raise DatasetError(f"{path}: no such file (expected the data.npz a dataset job writes)")
    verify_cache(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return ImageDataset(
                name=str(z["name"]),
                x_train=z["x_train"],
                y_train=z["y_train"],
                x_test=z["x_test"],
                y_test=z["y_test"],
                classes=[str(c) for c in z["classes"]],
                client_ids=z["client_ids"] if "client_ids" in z.files else None,
                mean=tuple(float(v) for v in z["mean"]),
                std=tuple(float(v) for v in z["std"]),
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CacheError(path, f"not a readable dataset cache ({exc}); {REBUILD}") from None


def check_arrays(name: str, x: np.ndarray, y: np.ndarray, num_classes: int, split: str) -> None:
    if x.dtype != np.uint8 or x.ndim != 4:
        raise DatasetError(
            f"{name}: {split} images must be uint8 (N, C, H, W), got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or len(y) != len(x):
        raise DatasetError(
            f"{name}: {split} labels must be 1-D with one per image ({len(x)}), got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{name}: {split} labels must be integers, got {y.dtype}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DatasetError(
            f"{name}: {split} labels must lie in [0, {num_classes}), "
            f"found {int(y.min())}..{int(y.max())}"
        )


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, on the [0, 1] scale, in float64."""
    c = x.shape[1]
    flat = x.transpose(1, 0, 2, 3).reshape(c, -1)
    mean = tuple(float(v) for v in flat.mean(axis=1, dtype=np.float64) / 255.0)
    std = tuple(float(v) for v in flat.std(axis=1, dtype=np.float64) / 255.0)
    return mean, tuple(max(s, 1e-6) for s in std)
