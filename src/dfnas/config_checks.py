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
    for rname, run in config.get("runs", {}).items():
        _check_run(rname, run, config.get("training", {}))


def _check_run(rname: str, run: dict, training: dict) -> None:
    """Build the run's method on a dummy input: every name, option, model argument and
    training value is checked exactly as the run will check it."""
    from dfnas.federated.config import TrainConfig
    from dfnas.methods import METHODS, MethodSetup
    from dfnas.models import MODELS
    from dfnas.models.registry import model_params

    key = f"runs.{rname}"
    if run["method"] not in METHODS:
        raise ConfigError(
            f"{key}.method: unknown method '{run['method']}'; known: {', '.join(METHODS.names())}"
        )
    two_stage = len(METHODS.get(run["method"]).stages) > 1
    if "train_stage" in run and not two_stage:
        raise ConfigError(f"{key}.train_stage: method '{run['method']}' has one stage")
    if two_stage:
        stage = run.get("train_stage", {})
        try:
            TrainConfig.from_dict(
                {**training, **run.get("training", {}), **stage.get("training", {})}
            )
        except ConfigError as exc:
            raise ConfigError(f"{key}.train_stage.{exc}") from None
    model = run.get("model", METHODS.get(run["method"]).default_model)
    if model not in MODELS:
        raise ConfigError(
            f"{key}.model: unknown model '{model}'; known: {', '.join(MODELS.names())}"
        )
    for arg in run.get("model_args", {}):
        if arg not in model_params(model):
            raise ConfigError(f"{key}.model_args.{arg}: not an argument of model '{model}'")
    options = dict(run.get("options", {}))
    if options.get("latency_table"):  # measured by the workflow later; checked in the run
        options.pop("latency_table")
        options.pop("budget_latency_ms", None)
    try:
        cfg = TrainConfig.from_dict({**training, **run.get("training", {})})
        METHODS.get(run["method"])(
            MethodSetup(
                model=model,
                model_args=dict(run.get("model_args", {})),
                in_shape=(3, 32, 32),
                num_classes=10,
                train=cfg,
                options=options,
            )
        )
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None


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
