"""One stage of a method run, from explicit inputs to the result contract: what
``dfnas run`` does.

    run_method(spec, data="results/datasets/digits-<key>/data.npz",
               partition="results/partitions/digits-<key>/iid-<key>/partition.json",
               seed=0, out_dir="results/digits/runs/digits/iid/fedavg_cnn/seed0")

``spec`` is one stage's spec (``methods.stages.stage_spec``): the run's method with the
stage's model, model_args, options and training, e.g.
``{"method": "fedavg", "model": "cnn", "model_args": {}, "options": {}, "training": {...}}``.
A later stage of a two-stage method also gets ``prior``, the folder the stage before it
wrote: the files it hands over (``Stage.receives``) and its metrics, whose costs this
stage's result carries on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dfnas.data import load_cached
from dfnas.errors import ConfigError
from dfnas.federated.checkpoint import CheckpointFile, fingerprint, remove_checkpoint
from dfnas.federated.loop import RunResult, run_federated
from dfnas.federated.settings import RunSettings
from dfnas.io import read_json
from dfnas.methods import METHODS, FedMethod, MethodSetup
from dfnas.methods.stages import Stage
from dfnas.partition.stage import read_partition
from dfnas.results import combine_stages, write_results

CHECKPOINT = "checkpoint.pt"
SPEC_KEYS = {"method", "model", "model_args", "options", "training"}


PROVENANCE_KEYS = (
    "code_version",
    "torch_version",
    "torch_git",
    "cpu",
    "cpu_capability",
    "onednn_max_cpu_isa",
    "device",
    "threads",
    "client_workers",
    "channels_last",
    "precision",
)


def experiment_of(out: Path) -> str | None:
    """The experiment a run folder belongs to, read from the result layout
    results/<experiment>/runs/<dataset>/<partition>/<run>/seed<k>[/<stage>]; None when the
    folder is not in that layout (a run started by hand)."""
    parts = Path(out).resolve().parts
    for i in range(len(parts) - 2):
        if parts[i] == "results" and parts[i + 2] == "runs":
            return parts[i + 1]
    return None


def build_method(
    spec: dict[str, Any],
    stage: Stage,
    in_shape: tuple[int, int, int],
    num_classes: int,
    prior: str | Path | None = None,
    inputs: Mapping[str, str] | None = None,
) -> FedMethod:
    """The method object of one stage of a run, as the server and (deployed) every client
    build it: the run's spec, the dataset's shape, and the hand-offs of the stage before."""
    declared = METHODS.get(stage.method or spec["method"])
    received = {key: read_json(Path(prior) / file) for key, file in stage.receives.items()}
    setup = MethodSetup.of(spec, declared.default_model, in_shape, num_classes, inputs, received)
    return declared.build(setup)


def _stage(spec: dict[str, Any], stage: str | None, prior: str | Path | None) -> tuple[Stage, bool]:
    """Which of the method's stages this job runs, and whether it is the last; a missing
    or needless prior is refused."""
    stages = METHODS.get(spec["method"]).stages
    names = [s.name for s in stages]
    if stage is not None and stage not in names:
        raise ConfigError(
            f"stage: method '{spec['method']}' has stages {', '.join(names)}, not '{stage}'"
        )
    index = names.index(stage) if stage else 0
    if index > 0 and prior is None:
        raise ConfigError(
            f"prior: stage {stages[index].name} needs the folder stage {names[index - 1]} wrote"
        )
    if index == 0 and prior is not None:
        raise ConfigError(f"prior: stage {stages[index].name} is the method's first; it takes none")
    return stages[index], index == len(stages) - 1


def run_method(
    spec: dict[str, Any],
    data: str | Path,
    partition: str | Path,
    seed: int,
    out_dir: str | Path,
    name: str | None = None,
    stage: str | None = None,
    prior: str | Path | None = None,
    settings: RunSettings | None = None,
) -> dict[str, Any]:
    """Run stage ``stage`` (default: the method's first) and write its result contract
    into ``out_dir``; returns its metrics. ``settings``: how and where it runs (device,
    threads, client workers, where clients train, the files the method declares it
    reads), which the config does not say."""
    settings = settings or RunSettings()
    name = name or spec["method"]
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ConfigError(f"runs.{name}.{unknown[0]}: unknown key")
    if settings.threads:
        torch.set_num_threads(settings.threads)
    this, last = _stage(spec, stage, prior)
    out = Path(out_dir)
    ds = load_cached(data)
    part = read_partition(partition)
    method = build_method(spec, this, ds.in_shape, ds.num_classes, prior, settings.inputs)
    checksum = part.checksum()
    run_config = {
        "name": name,
        "stage": this.name,
        "spec": spec,
        "training": method.setup.train.as_dict(),
        "seed": seed,
        "dataset": ds.name,
        "partition_checksum": checksum,
    }
    ckpt = out / CHECKPOINT
    result = run_federated(
        method,
        ds,
        part,
        seed=seed,
        settings=settings,
        # provenance, added below, is not part of the fingerprint
        checkpoint=CheckpointFile(ckpt, fingerprint(run_config)),
        personalize_final=last,
    )
    assert result is not None
    metrics = _write(out, run_config, result, method, this, prior)
    remove_checkpoint(ckpt)
    return metrics


def _write(
    out: Path,
    run_config: dict[str, Any],
    result: RunResult,
    method: FedMethod,
    stage: Stage,
    prior: str | Path | None,
) -> dict[str, Any]:
    """The stage's result contract, its method's own files and where the run came from;
    returns its metrics (a later stage's carry the earlier stages' costs)."""
    spec = run_config["spec"]
    metrics = {
        "run": run_config["name"],
        "method": spec["method"],
        "stage": stage.name,
        "model": method.setup.model,
        "dataset": run_config["dataset"],
        "partition_checksum": run_config["partition_checksum"],
        **result.metrics,
    }
    if prior is not None:
        metrics = combine_stages(read_json(Path(prior) / "metrics.json"), metrics)
    # where the run came from: the experiment (from the result layout), the code and the
    # machine; metrics.json repeats the machine's part beside the numbers it shaped
    run_config["provenance"] = {
        "experiment": experiment_of(out),
        **{k: metrics[k] for k in PROVENANCE_KEYS if k in metrics},
    }
    files = METHODS.get(stage.method or spec["method"]).files(method)
    write_results(
        out,
        metrics,
        result.history,
        result.model,
        result.model_spec,
        run_config,
        result.personalized,
        files,
    )
    return metrics
