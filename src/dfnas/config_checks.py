"""Config checks that need the registries: names that must exist, parameters that must
belong to the chosen partitioner, partitions that cannot be built. Each raises a
``ConfigError`` naming the key, when the workflow starts rather than hours into a run."""

from __future__ import annotations

from dfnas.data import DATASETS, KNOWN_TRAIN_SIZES, known_classes, known_shape
from dfnas.data.npz import find_npz
from dfnas.errors import ConfigError
from dfnas.partition.partitioners import COMMON_KEYS, PARTITIONERS, partitioner_params

ANY_DATASET = ""  # the stand-in when no dataset's shape is known at start
STAND_IN = ((3, 32, 32), 10)  # its input shape and class count: CIFAR-10's
Inputs = dict[str, tuple[tuple[int, int, int], int]]  # dataset -> (input shape, classes)
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
        root = config["data_root"]
        if loader == "npz" and find_npz(root, opts["path"]) is None:
            raise ConfigError(
                f"datasets.{name}.path: {opts['path']} not found (nor under data_root {root})"
            )
    for pname, spec in config["partitions"].items():
        _check_partition(pname, spec, config["datasets"])
    _check_workers(config)
    inputs = _known_inputs(config["datasets"])
    for rname, run in config.get("runs", {}).items():
        _check_run(rname, run, config.get("training", {}), inputs)
        _check_participation(rname, run, config)


def _check_workers(config: dict) -> None:
    workers, threads = config.get("client_workers", 1), config.get("threads_per_run", 1)
    if workers > threads:
        raise ConfigError(
            f"client_workers: {workers} workers would share {threads} threads_per_run; "
            "expected at most threads_per_run (each worker needs a thread of its own)"
        )
    if workers > 1 and str(config.get("device", "auto")).startswith("cuda"):
        raise ConfigError("client_workers: worker processes train clients on CPU only; use 1")


def _known_inputs(datasets: dict) -> Inputs:
    """Input shape and class count per dataset where both are known without reading it;
    a CIFAR-sized stand-in when none is (the run checks the rest once its data is read)."""
    inputs = {}
    for dname, opts in datasets.items():
        shape, classes = known_shape(dname, opts), known_classes(dname, opts)
        if shape is not None and classes is not None:
            inputs[dname] = (shape, classes)
    return inputs or {ANY_DATASET: STAND_IN}


def _check_participation(rname: str, run: dict, config: dict) -> None:
    """More clients per round than a partition has would silently train them all. Each
    stage is checked at its effective value, naming the layer of the config that set it."""
    from dfnas.methods import METHODS

    layers = [
        ("training", config.get("training", {})),
        (f"runs.{rname}.training", run.get("training", {})),
    ]
    stages = [layers]
    for stage in METHODS.get(run["method"]).stages[1:]:
        own = run.get(stage.config_key(), {}).get("training", {})
        stages.append([*layers, (f"runs.{rname}.{stage.config_key()}.training", own)])
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


def _check_run(rname: str, run: dict, training: dict, inputs: Inputs) -> None:
    """Every stage of the run built as its job will build it, on each dataset's input
    shape and classes: names, options, model arguments, training values and whatever the method
    checks against its network (a device budget below the space's cheapest child)."""
    from dfnas.methods import METHODS
    from dfnas.methods.stages import stage_spec

    key = f"runs.{rname}"
    if run["method"] not in METHODS:
        raise ConfigError(
            f"{key}.method: unknown method '{run['method']}'; known: {', '.join(METHODS.names())}"
        )
    declared = METHODS.get(run["method"])
    declared.check_stages()
    stages = declared.stages
    own_keys = {s.config_key() for s in stages[1:]}
    for k in run:
        if k.endswith("_stage") and k not in own_keys:
            names = ", ".join(s.name for s in stages)
            why = (
                "is the first stage: it takes the run's own keys"
                if k == stages[0].config_key()
                else "is not a later stage of it"
            )
            raise ConfigError(
                f"{key}.{k}: '{k.removesuffix('_stage')}' {why} (method "
                f"'{run['method']}', stages: {names})"
            )
    for index, stage in enumerate(stages):
        where = key if index == 0 else f"{key}.{stage.config_key()}"
        spec = stage_spec(run, stages, index, training)
        for arg in stage.receives:
            if arg in spec["model_args"]:
                raise ConfigError(
                    f"{where}.model_args.{arg}: handed over by stage {stages[index - 1].name}, "
                    "not set by hand"
                )
        _check_stage(where, stage.method or run["method"], spec, inputs)


def _check_stage(where: str, method: str, spec: dict, inputs: Inputs) -> None:
    from dfnas.federated.config import TrainConfig
    from dfnas.methods import METHODS, MethodSetup
    from dfnas.methods.options import parse_options
    from dfnas.models import MODELS

    declared = METHODS.get(method)
    model = spec.get("model", declared.default_model)
    if model not in MODELS:
        raise ConfigError(
            f"{where}.model: unknown model '{model}'; known: {', '.join(MODELS.names())}"
        )
    _check_model_args(where, model, spec["model_args"])
    options = dict(spec["options"])
    # the files the method reads are made by the workflow later: named here, not read
    files = {name: "" for name in declared.input_files(options)}
    try:
        TrainConfig.from_dict(spec["training"])
        parse_options(declared.options, options)  # the same on every dataset
    except ConfigError as exc:
        raise ConfigError(f"{where}.{exc}") from None
    for dname, (shape, classes) in inputs.items():
        on = "" if dname == ANY_DATASET else f" on dataset '{dname}'"
        try:
            setup = MethodSetup.of(spec, declared.default_model, shape, classes, files)
            method = declared.build(setup)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}{on}") from None
        try:
            method.build_model()
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}{on}") from None
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ConfigError(
                f"{where}.model_args: model '{model}' cannot be built{on} ({exc})"
            ) from None


def _check_partition(pname: str, spec: dict, datasets: dict) -> None:
    key = f"partitions.{pname}"
    kind = spec["partitioner"]
    if kind not in PARTITIONERS:
        raise ConfigError(
            f"{key}.partitioner: unknown partitioner '{kind}'; known: "
            f"{', '.join(PARTITIONERS.names())}"
        )
    accepted = partitioner_params(kind)
    missing = sorted(partitioner_params(kind, required=True) - set(spec))
    if missing:
        raise ConfigError(f"{key}.{missing[0]}: partitioner '{kind}' needs it")
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
        shards = spec["num_clients"] * spec.get("shards_per_client", 0)
        if size is not None and kind == "shards" and shards * spec.get("shard_size", 1) > size:
            raise ConfigError(
                f"{key}.shards_per_client: {spec['num_clients']} clients x "
                f"{spec['shards_per_client']} shards of {spec.get('shard_size', 1)}+ samples "
                f"need more than the {size} train samples of dataset '{dname}'"
            )


def _check_model_args(key: str, model: str, model_args: dict) -> None:
    from dfnas.models.registry import model_params

    for arg in model_args:
        if arg not in model_params(model):
            raise ConfigError(f"{key}.model_args.{arg}: not an argument of model '{model}'")
