"""A full client partition: train indices per client, plus a local test split per client.

The local test split serves personalized evaluation (fine-tune on local train, test on
local test); the global test set is the dataset's own test split and is never touched
here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from dfnas.errors import DfnasError
from dfnas.partition.partitioners import COMMON_KEYS, PARTITIONERS, partitioner_params


@dataclass(frozen=True)
class ClientPartition:
    """Per client: indices into the dataset's train arrays, disjoint across clients."""

    train: list[np.ndarray]
    test: list[np.ndarray]

    @property
    def num_clients(self) -> int:
        return len(self.train)

    def to_json(self) -> dict:
        return {
            "num_clients": self.num_clients,
            "clients": [
                {"train": tr.tolist(), "test": te.tolist()}
                for tr, te in zip(self.train, self.test, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, blob: dict) -> ClientPartition:
        clients = blob["clients"]
        return cls(
            train=[np.asarray(c["train"], dtype=np.int64) for c in clients],
            test=[np.asarray(c["test"], dtype=np.int64) for c in clients],
        )

    def checksum(self) -> str:
        """SHA-256 of the assignment itself, independent of JSON formatting."""
        canon = json.dumps(self.to_json()["clients"], separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()


# the one home of a partition's defaults (the config schema repeats them, so that a
# partition's cache key holds them; a test keeps the two equal)
PARTITION_DEFAULTS = {"seed": 42, "local_test_fraction": 0.2, "min_partition_size": 2}


def make_partition(
    labels: np.ndarray, spec: dict, client_ids: np.ndarray | None = None
) -> ClientPartition:
    """Split ``labels`` over clients as ``spec`` (one entry of the config's partitions) says."""
    spec = {**PARTITION_DEFAULTS, **spec}
    name = spec["partitioner"]
    num_clients = int(spec["num_clients"])
    seed = int(spec["seed"])
    min_size = int(spec["min_partition_size"])
    if num_clients > len(labels):
        raise DfnasError(f"num_clients: {num_clients} clients for {len(labels)} train samples")
    accepted = partitioner_params(name)
    extra = {k: v for k, v in spec.items() if k not in COMMON_KEYS}
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise DfnasError(
            f"{unknown[0]}: not a parameter of partitioner '{name}' "
            f"(it takes: {', '.join(sorted(accepted)) or 'none'})"
        )
    if "min_partition_size" in accepted:
        extra["min_partition_size"] = min_size
    parts = PARTITIONERS.get(name)(labels, client_ids, num_clients, seed, **extra)
    sizes = [len(p) for p in parts]
    if min(sizes) < min_size:
        small = int(np.argmin(sizes))
        raise DfnasError(
            f"min_partition_size: client {small} got {sizes[small]} samples, fewer than "
            f"{min_size}; use fewer clients or a larger alpha"
        )
    return local_test_split(parts, float(spec["local_test_fraction"]), seed)


def local_test_split(parts: list[np.ndarray], fraction: float, seed: int) -> ClientPartition:
    """Hold out ``fraction`` of each client's samples (at least one if fraction > 0)."""
    rng = np.random.default_rng([seed, 1])  # a stream of its own, apart from the partitioner's
    train, test = [], []
    for idx in parts:
        perm = rng.permutation(idx)
        n_test = int(round(fraction * len(perm)))
        if fraction > 0:
            n_test = min(max(n_test, 1), len(perm) - 1)
        test.append(np.sort(perm[:n_test]))
        train.append(np.sort(perm[n_test:]))
    return ClientPartition(train=train, test=test)
