"""Config checks that need the registries: names that must exist, parameters that must
belong to the chosen partitioner, partitions that cannot be built. Each raises a
``ConfigError`` naming the key, when the workflow starts rather than hours into a run."""

from __future__ import annotations

from dfnas.data import DATASETS, KNOWN_TRAIN_SIZES
from dfnas.errors import ConfigError
from dfnas.partition.partitioners import COMMON_KEYS, PARTITIONERS, partitioner_params

# loaders whose data carry natural client ids
_LOADERS_WITH_CLIENT_IDS = {"femnist", "npz"}


def check_semantics(config: dict) -> None:
    for name, opts in config["datasets"].items():
        loader = opts.get("loader", name)
        if loader not in DATASETS:
            raise ConfigError(
                f"datasets.{name}.loader: unknown loader '{loader}'; "
                f"known: {', '.join(DATASETS.names())}"
            )
        if loader == "npz" and "path" not in opts:
            raise ConfigError(f"datasets.{name}.path: the npz loader needs the .npz file's path")
    for pname, spec in config["partitions"].items():
        _check_partition(pname, spec, config["datasets"])


def _check_partition(pname: str, spec: dict, datasets: dict) -> None:
    key = f"partitions.{pname}"
    kind = spec["partitioner"]
    if kind not in PARTITIONERS:
        raise ConfigError(f"{key}.partitioner: unknown partitioner '{kind}'")
    accepted = partitioner_params(kind)
    for param in spec:
        if param not in COMMON_KEYS and param not in accepted:
            raise ConfigError(
                f"{key}.{param}: not a parameter of partitioner '{kind}' "
                f"(it takes: {', '.join(sorted(accepted)) or 'none'})"
            )
    for dname, opts in datasets.items():
        loader = opts.get("loader", dname)
        if kind == "natural" and loader not in _LOADERS_WITH_CLIENT_IDS:
            raise ConfigError(
                f"{key}.partitioner: 'natural' needs client ids, dataset '{dname}' has none"
            )
        size = KNOWN_TRAIN_SIZES.get(loader)
        if size is not None and spec["num_clients"] > size:
            raise ConfigError(
                f"{key}.num_clients: {spec['num_clients']} clients but dataset '{dname}' "
                f"has only {size} train samples"
            )
