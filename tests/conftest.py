"""Shared fixtures: small files in the real dataset formats, written per test."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10" / "make-cifar10"


def write_cifar10(root: Path, per_batch: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
            b"batch_label": name.encode(),
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)
    return folder


def write_cifar100(root: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(),
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, fh)
    return folder


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "mnist", n: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    out = root / folder
    out.mkdir(parents=True)
    for split, count in (("train", n), ("t10k", n // 2)):
        write_idx(out / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        write_idx(out / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, count))
    return out


def write_femnist(root: Path, writers: int = 4, per_writer: int = 5, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        folder = root / "femnist" / split
        folder.mkdir(parents=True)
        users = [f"f{w:04d}_{split}" if split == "test" else f"f{w:04d}" for w in range(writers)]
        blob = {
            "users": users,
            "num_samples": [per_writer] * writers,
            "user_data": {
                u: {
                    "x": rng.random((per_writer, 784)).round(3).tolist(),
                    "y": rng.integers(0, 62, per_writer).tolist(),
                }
                for u in users
            },
        }
        (folder / "all_data_0.json").write_text(json.dumps(blob))
    return root / "femnist"


@pytest.fixture
def digits():
    from dfnas.data import load_dataset

    return load_dataset("digits")
