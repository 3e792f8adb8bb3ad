"""Partitioners: labels -> one array of train-sample indices per client.

The label-based ones are Flower's (flwr-datasets), run on an in-memory label table with no
hub access. The table is shuffled with the partition seed first, exactly as
``FederatedDataset(shuffle=True, seed=seed)`` does, so a partition here is the one a Flower
baseline gets for the same data order and seed.

A partitioner is ``fn(labels, client_ids, num_clients, seed, **params) -> list[ndarray]``;
its keyword parameters are the config keys it accepts.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable

import numpy as np

from dfnas.errors import ConfigError, DfnasError
from dfnas.registry import Registry

Partitioner = Callable[..., list[np.ndarray]]
PARTITIONERS: Registry[Partitioner] = Registry("partitioner")

# keys every partition has, handled outside the partitioner itself
COMMON_KEYS = {"partitioner", "num_clients", "seed", "local_test_fraction", "min_partition_size"}


def partitioner_params(name: str, required: bool = False) -> set[str]:
    """The spec keys partitioner ``name`` takes beyond the common ones (``required``: only
    those without a default, which a spec must set)."""
    params = list(inspect.signature(PARTITIONERS.get(name)).parameters.values())[4:]
    return {
        p.name
        for p in params
        if not required or (p.default is inspect.Parameter.empty and p.name not in COMMON_KEYS)
    }


def _flower_split(labels: np.ndarray, seed: int, make: Callable[[], object]) -> list[np.ndarray]:
    import datasets  # imported lazily: pulls pyarrow

    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict(
        {"label": labels.astype(np.int64), "sample": np.arange(len(labels), dtype=np.int64)}
    ).shuffle(seed=seed)
    part = make()
    part.dataset = table
    try:
        with warnings.catch_warnings():
            # pyarrow deprecation noise from inside flwr-datasets, not ours to fix
            warnings.simplefilter("ignore", FutureWarning)
            return [
                np.sort(np.asarray(part.load_partition(i)["sample"], dtype=np.int64))
                for i in range(part.num_partitions)
            ]
    except ValueError as exc:  # flwr's own message, e.g. min_partition_size not reachable
        raise DfnasError(f"partitioner failed: {exc}") from None


@PARTITIONERS.register("iid")
def iid(labels: np.ndarray, client_ids: np.ndarray | None, num_clients: int, seed: int) -> list:
    from flwr_datasets.partitioner import IidPartitioner

    return _flower_split(labels, seed, lambda: IidPartitioner(num_partitions=num_clients))


@PARTITIONERS.register("dirichlet")
def dirichlet(
    labels: np.ndarray,
    client_ids: np.ndarray | None,
    num_clients: int,
    seed: int,
    alpha: float,
    min_partition_size: int,  # default: split.PARTITION_DEFAULTS
    self_balancing: bool = False,
) -> list:
    """Hsu et al. 2019 ("LDA" in FedML): per class, client shares ~ Dirichlet(alpha)."""
    from flwr_datasets.partitioner import DirichletPartitioner

    return _flower_split(
        labels,
        seed,
        lambda: DirichletPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            alpha=alpha,
            min_partition_size=min_partition_size,
            self_balancing=self_balancing,
            seed=seed,
        ),
    )


@PARTITIONERS.register("shards")
def shards(
    labels: np.ndarray,
    client_ids: np.ndarray | None,
    num_clients: int,
    seed: int,
    shards_per_client: int,
    shard_size: int | None = None,
) -> list:
    """FedAvg paper: sort by label, cut into shards, deal each client ``shards_per_client``."""
    from flwr_datasets.partitioner import ShardPartitioner

    return _flower_split(
        labels,
        seed,
        lambda: ShardPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_shards_per_partition=shards_per_client,
            shard_size=shard_size,
            seed=seed,
        ),
    )


@PARTITIONERS.register("pathological")
def pathological(
    labels: np.ndarray,
    client_ids: np.ndarray | None,
    num_clients: int,
    seed: int,
    classes_per_client: int,
    class_assignment: str = "random",
) -> list:
    """NIID-Bench's #C=k: each client holds samples of exactly ``classes_per_client`` labels."""
    from flwr_datasets.partitioner import PathologicalPartitioner

    return _flower_split(
        labels,
        seed,
        lambda: PathologicalPartitioner(
            num_partitions=num_clients,
            partition_by="label",
            num_classes_per_partition=classes_per_client,
            class_assignment_mode=class_assignment,
            seed=seed,
        ),
    )


@PARTITIONERS.register("natural")
def natural(labels: np.ndarray, client_ids: np.ndarray | None, num_clients: int, seed: int) -> list:
    """The dataset's own owners (e.g. FEMNIST writers); ``num_clients`` of them, drawn
    with the seed when the data has more. Samples of writers not drawn are left out."""
    if client_ids is None:
        raise ConfigError("partitioner 'natural' needs a dataset with client ids (e.g. femnist)")
    owners = np.unique(client_ids)
    if num_clients > len(owners):
        raise ConfigError(
            f"num_clients: {num_clients} asked, the data has {len(owners)} natural clients"
        )
    chosen = np.sort(np.random.default_rng(seed).choice(owners, size=num_clients, replace=False))
    return [np.flatnonzero(client_ids == owner) for owner in chosen]
