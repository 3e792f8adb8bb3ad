"""Config checks that need the registries: names that must exist, parameters that must
belong to the chosen partitioner, partitions that cannot be built. Each raises a
``ConfigError`` naming the key, when the workflow starts rather than hours into a run."""

from __future__ import annotations

from dfnas.data import DATASETS, KNOWN_SHAPES, KNOWN_TRAIN_SIZES
from dfnas.data.npz import find_npz
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
        root = config.get("data_root", "data")
        if loader == "npz" and find_npz(root, opts["path"]) is None:
            raise ConfigError(
                f"datasets.{name}.path: {opts['path']} not found (nor under data_root {root})"
            )
    for pname, spec in config["partitions"].items():
        _check_partition(pname, spec, config["datasets"])
    for rname, run in config.get("runs", {}).items():
        _check_run(rname, run, config.get("training", {}))
        _check_participation(rname, run, config)
        _check_budgets(rname, run, config["datasets"])


def _check_participation(rname: str, run: dict, config: dict) -> None:
    """More clients per round than a partition has would silently train them all. Each
    stage is checked at its effective value, naming the layer of the config that set it."""
    layers = [
        ("training", config.get("training", {})),
        (f"runs.{rname}.training", run.get("training", {})),
    ]
    stages = [layers]
    if "train_stage" in run:
        stage = (f"runs.{rname}.train_stage.training", run["train_stage"].get("training", {}))
        stages.append([*layers, stage])
    for stage_layers in stages:
        setters = [(k, t["clients_per_round"]) for k, t in stage_layers if "clients_per_round" in t]
        if not setters or setters[-1][1] == "all":
            continue
        where, per_round = setters[-1]
        for pname, spec in config["partitions"].items():
            if per_round > spec["num_clients"]:
                raise ConfigError(
                    f"{where}.clients_per_round: {per_round} but partition "
                    f"'{pname}' has {spec['num_clients']} clients (run '{rname}')"
                )


def _check_budgets(rname: str, run: dict, datasets: dict) -> None:
    """A MACs budget below the cheapest child of the space, at each dataset's resolution."""
    budget = run.get("options", {}).get("budget_macs")
    if budget is None or run["method"] != "dfnas":
        return
    from dfnas.search.derive import Budget
    from dfnas.search.supernet import CostTable, ShuffleSupernet

    for dname, opts in datasets.items():
        shape = KNOWN_SHAPES.get(opts.get("loader", dname))
        if shape is None:
            continue  # checked in the run, once the data's shape is known
        net = ShuffleSupernet(shape, 10, **run.get("model_args", {}))
        table = CostTable(net)
        try:
            Budget("macs", budget, table.op_macs, table.fixed_macs).check_reachable()
        except ConfigError as exc:
            raise ConfigError(f"runs.{rname}.{exc} on dataset '{dname}'") from None


def _check_run(rname: str, run: dict, training: dict) -> None:
    """Build the run's method on a dummy input: every name, option, model argument and
    training value is checked exactly as the run will check it."""
    from dfnas.federated.config import TrainConfig
    from dfnas.methods import METHODS, MethodSetup
    from dfnas.models import MODELS

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
        _check_model(f"{key}.train_stage", "darts", stage.get("model_args", {}), train_stage=True)
    model = run.get("model", METHODS.get(run["method"]).default_model)
    if model not in MODELS:
        raise ConfigError(
            f"{key}.model: unknown model '{model}'; known: {', '.join(MODELS.names())}"
        )
    _check_model_args(key, model, run.get("model_args", {}))
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


def _check_model_args(key: str, model: str, model_args: dict) -> None:
    from dfnas.models.registry import model_params

    for arg in model_args:
        if arg not in model_params(model):
            raise ConfigError(f"{key}.model_args.{arg}: not an argument of model '{model}'")


def _check_model(key: str, model: str, model_args: dict, train_stage: bool = False) -> None:
    """Build the model on a CIFAR-sized dummy input: bad sizes fail here, not in a job."""
    from dfnas.models import build_model

    if train_stage and "genotype" in model_args:
        raise ConfigError(f"{key}.model_args.genotype: the train stage takes the searched one")
    _check_model_args(key, model, model_args)
    try:
        build_model(model, in_shape=(3, 32, 32), num_classes=10, **model_args)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"{key}.model_args: model '{model}' cannot be built ({exc})") from None
