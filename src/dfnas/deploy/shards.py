"""Each client's own data, as a deployed client holds it: one file per client.

In simulation every client's train split is a set of indices into one cached dataset. A
deployed client (a Flower SuperNode, ``deploy.flower_client``) holds only its own images:
``write_shards`` cuts ``client<k>.npz`` per client from the cached dataset and its
partition, in the partition's order, so that a client's minibatches, drawn by position,
are the very images the simulation draws by index. A shard also carries the global indices
of its images (to carve the same local validation split) and the normalization the server
uses::

    write_shards("results/datasets/digits-<key>/data.npz",
                 "results/partitions/.../partition.json", "shards/")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfnas.data import load_cached
from dfnas.errors import DfnasError
from dfnas.partition.stage import read_partition

SHARD_KEYS = ("x", "y", "indices", "mean", "std", "num_classes", "client")


@dataclass(frozen=True)
class Shard:
    """One client's train images (uint8 N, C, H, W), labels, and what it needs beside."""

    client: int
    x: np.ndarray
    y: np.ndarray
    indices: np.ndarray  # each image's index in the whole train set (the partition's)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int

    @property
    def in_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def positions(self, indices: np.ndarray) -> np.ndarray:
        """Where global train indices sit in this shard (they must all be its own)."""
        order = np.argsort(self.indices, kind="stable")
        found = order[np.searchsorted(self.indices, indices, sorter=order)]
        if not np.array_equal(self.indices[found], indices):
            raise DfnasError(f"client {self.client}: indices outside its shard")
        return found


def shard_path(folder: str | Path, client: int) -> Path:
    return Path(folder) / f"client{client}.npz"


def write_shards(data: str | Path, partition: str | Path, out: str | Path) -> list[Path]:
    """One shard per client of ``partition``; returns their paths."""
    ds = load_cached(data)
    part = read_partition(partition)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, idx in enumerate(part.train):
        idx = np.asarray(idx, dtype=np.int64)
        path = shard_path(out, k)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(
            tmp,
            x=ds.x_train[idx],
            y=ds.y_train[idx],
            indices=idx,
            mean=np.asarray(ds.mean, dtype=np.float64),
            std=np.asarray(ds.std, dtype=np.float64),
            num_classes=np.int64(ds.num_classes),
            client=np.int64(k),
        )
        os.replace(tmp, path)  # a later reader never sees half a shard
        paths.append(path)
    return paths


def read_shard(path: str | Path) -> Shard:
    """A client's shard, or a one-line error naming the file and what is wrong."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in SHARD_KEYS if k not in f]
            if missing:
                raise DfnasError(f"{path}: not a client shard (no '{missing[0]}' array)")
            arrays = {k: f[k] for k in SHARD_KEYS}
    except (OSError, ValueError) as exc:
        raise DfnasError(f"{path}: cannot read the client shard ({exc})") from None
    return Shard(
        client=int(arrays["client"]),
        x=arrays["x"],
        y=arrays["y"],
        indices=arrays["indices"],
        mean=tuple(float(v) for v in arrays["mean"]),
        std=tuple(float(v) for v in arrays["std"]),
        num_classes=int(arrays["num_classes"]),
    )
