"""One method run from explicit inputs to the result contract: what ``dfnas run`` does.

    run_method(spec, data="results/datasets/digits/data.npz",
               partition="results/partitions/digits/iid/seed42/partition.json",
               seed=0, out_dir="results/digits/iid/fedavg_cnn/seed0")

``spec`` is one entry of the config's ``runs`` with the training defaults merged in:
``{"method": "fedavg", "model": "cnn", "model_args": {}, "options": {}, "training": {...}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dfnas.data import load_cached
from dfnas.errors import ConfigError
from dfnas.federated.checkpoint import fingerprint
from dfnas.federated.config import TrainConfig
from dfnas.federated.loop import run_federated
from dfnas.io import read_json
from dfnas.methods import METHODS, MethodSetup
from dfnas.partition.stage import read_partition
from dfnas.results import combine_stages, write_results

CHECKPOINT = "checkpoint.pt"


def run_method(
    spec: dict[str, Any],
    data: str | Path,
    partition: str | Path,
    seed: int,
    out_dir: str | Path,
    name: str | None = None,
    device: str = "auto",
    threads: int | None = None,
    genotype: str | Path | None = None,
    prior_stage: str | Path | None = None,
) -> dict[str, Any]:
    """``genotype``: a searched genotype file, handed to the model as ``model_args.genotype``
    (FedNAS's train stage); ``prior_stage``: the search stage's metrics.json, whose costs
    are added to this run's (``results.combine_stages``)."""
    unknown = sorted(set(spec) - {"method", "model", "model_args", "options", "training"})
    if unknown:
        raise ConfigError(f"runs.{name}.{unknown[0]}: unknown key")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    ds = load_cached(data)
    part = read_partition(partition)
    method_cls = METHODS.get(spec["method"])
    model_args = dict(spec.get("model_args", {}))
    if genotype:
        model_args["genotype"] = read_json(genotype)
    setup = MethodSetup(
        model=spec.get("model", method_cls.default_model),
        model_args=model_args,
        in_shape=ds.in_shape,
        num_classes=ds.num_classes,
        train=TrainConfig.from_dict(spec.get("training", {})),
        options=dict(spec.get("options", {})),
    )
    method = method_cls(setup)
    checksum = part.checksum()
    run_config = {
        "name": name or spec["method"],
        "spec": spec,
        "training": setup.train.as_dict(),
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
        device=device,
        checkpoint=ckpt,
        fingerprint=fingerprint(run_config),
    )
    assert result is not None
    metrics = {
        "method": name or spec["method"],
        "algorithm": spec["method"],
        "model": setup.model,
        "dataset": ds.name,
        "partition_checksum": checksum,
        **result.metrics,
    }
    if prior_stage:
        metrics = combine_stages(read_json(prior_stage), metrics)
    write_results(
        out,
        metrics,
        result.history,
        result.model,
        result.model_spec,
        run_config,
        result.personalized,
        result.extra_outputs,
    )
    ckpt.unlink(missing_ok=True)
    return metrics
