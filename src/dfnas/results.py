"""The result contract every method run writes (see docs/pipeline.md, "The result contract")::

    results/<experiment>/runs/<dataset>/<partition>/<run>/seed<k>/
        history.csv     one row per round: accuracy when evaluated, bytes, FLOPs, seconds
        metrics.json    final figures (accuracy, personalized accuracy, params, MACs, costs)
        model.pt        the final network's state_dict (torch.load(..., weights_only=True))
        model.json      the architecture: enough to rebuild the network by name
        personalized.csv  per-client local accuracy before and after fine-tuning
        config.json     the effective settings of the run

metrics.json is written last, so its presence means the run is complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dfnas.io import atomic_path, write_json

REQUIRED_METRICS = (
    "method",  # the method (fedavg, dfnas, ...); the run's name is its folder's
    "accuracy",
    "personalized_accuracy_mean",
    "personalized_accuracy_std",
    "params",
    "macs",
    "train_flops",
    "bytes_down",
    "bytes_up",
    "wall_seconds",
    "client_seconds",
    "peak_memory_bytes",
    "rounds",
)


def write_csv(path: Path, rows: list[dict]) -> None:
    import pandas as pd  # here: a run imports pandas (~0.3 s) only to write its CSVs

    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def write_results(
    out_dir: str | Path,
    metrics: dict[str, Any],
    history: list[dict],
    model: torch.nn.Module,
    model_spec: dict,
    run_config: dict,
    personalized: list[dict] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    missing = [k for k in REQUIRED_METRICS if k not in metrics]
    if missing:
        raise ValueError(f"metrics lack required keys: {', '.join(missing)}")
    out = Path(out_dir)
    write_csv(out / "history.csv", history)
    write_csv(out / "personalized.csv", personalized or [])
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / "model.pt") as tmp:
        torch.save(state, tmp)
    write_json(out / "model.json", model_spec)
    write_json(out / "config.json", run_config)
    for name, blob in (extra or {}).items():
        write_json(out / name, blob)
    write_json(out / "metrics.json", metrics)


SUMMED = (
    "train_flops",
    "bytes_down",
    "bytes_up",
    "wall_seconds",
    "client_seconds",
    "client_cpu_seconds",
    "rounds",
)


def combine_stages(prior: dict[str, Any], this: dict[str, Any]) -> dict[str, Any]:
    """A multi-stage run's metrics: this (later) stage's figures (accuracy, model size),
    costs summed over the stages under the usual keys, and the cost of each phase of
    every stage under ``stages`` (FedNAS: search, then train)."""
    out = dict(this)
    for key in SUMMED:
        out[key] = prior[key] + this[key]
    for key in ("peak_memory_bytes", "client_memory_bytes"):
        if key in prior or key in this:
            out[key] = max(prior.get(key, 0), this.get(key, 0))
    # whether the search searched travels with the result it produced (search.health)
    out["search_warnings"] = prior.get("search_warnings", []) + this.get("search_warnings", [])
    phases = {name: dict(costs) for name, costs in prior.get("stages", {}).items()}
    for name, costs in this.get("stages", {}).items():
        acc = phases.setdefault(name, dict.fromkeys(costs, 0))
        for key, value in costs.items():
            acc[key] = acc.get(key, 0) + value
    out["stages"] = phases
    # the earlier stages' folders in the run's, in order: where their histories are
    out["prior_stages"] = [*prior.get("prior_stages", []), prior["stage"]]
    return out
