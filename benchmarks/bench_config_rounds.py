"""Seconds per round of every run of a config, measured on this machine's device, and the
wall time the whole config would take: how long a paper-size config runs on a GPU,
before committing hours to it.

Each run trains ``--rounds`` real rounds at the config's sizes (clients, local work,
model) on CIFAR-shaped random pixels (throughput does not depend on content); the
first round, which warms up kernels, is reported apart. A two-stage method is timed
per stage (FedNAS's train stage on DARTS-V2, a genotype of the searched space's size);
DFNAS's child rounds are timed as its search rounds (one path per step either way, plus
alpha), so its estimate is an upper bound. Needs no snakemake, jsonschema or data.

    python benchmarks/bench_config_rounds.py config/paper/cross_silo.yaml [--rounds 2]
        [--client-workers 1 2]   # each run also with its clients in 2 worker processes
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch
import yaml

from dfnas.data import ImageDataset
from dfnas.federated.config import TrainConfig
from dfnas.federated.loop import run_federated
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS, MethodSetup
from dfnas.methods.stages import stage_spec
from dfnas.partition.split import local_test_split

SHAPES = {"cifar10": ((3, 32, 32), 10, 50_000), "digits": ((1, 8, 8), 10, 1_437)}


def fake_data(dataset: str, clients: int, seed: int = 0) -> tuple[ImageDataset, object]:
    shape, classes, n = SHAPES[dataset]
    rng = np.random.default_rng(seed)
    ds = ImageDataset(
        name=f"{dataset}-shaped",
        x_train=rng.integers(0, 256, (n, *shape), dtype=np.uint8),
        y_train=rng.integers(0, classes, n).astype(np.int64),
        x_test=rng.integers(0, 256, (10_000 if n > 10_000 else 360, *shape), dtype=np.uint8),
        y_test=rng.integers(0, classes, 10_000 if n > 10_000 else 360).astype(np.int64),
        classes=[str(i) for i in range(classes)],
    )
    return ds, local_test_split(np.array_split(np.arange(n), clients), 0.2, seed=0)


def stages(name: str, run: dict, training: dict) -> list[tuple[str, str, dict, int]]:
    """(label, executing method, spec, rounds in the config) per stage of one run; a later
    stage's hand-off (FedNAS's genotype) is left to the model's default."""
    declared = METHODS.get(run["method"]).stages
    out = []
    for index, stage in enumerate(declared):
        spec = stage_spec(run, declared, index, training)
        label = name if len(declared) == 1 else f"{name}/{stage.name}"
        out.append((label, stage.method or run["method"], spec, spec["training"]["rounds"]))
    return out


def time_rounds(
    method_name: str, spec: dict, ds, part, rounds: int, device: str, workers: int = 1
) -> tuple[list[float], float]:
    """Wall seconds of each round and the device's peak memory (GiB; 0 on CPU)."""
    training = {**spec["training"], "rounds": rounds, "eval_every": rounds}
    options = dict(spec.get("options", {}))
    if method_name == "dfnas":  # every timed round a search round
        options.update(search_rounds=rounds, warmup_rounds=0)
    declared = METHODS.get(method_name)
    method = declared.build(
        MethodSetup(
            model=spec.get("model", declared.default_model),
            model_args=dict(spec.get("model_args", {})),
            in_shape=ds.in_shape,
            num_classes=ds.num_classes,
            train=TrainConfig.from_dict({**training, "personalize_epochs": 0}),
            options=options,
        )
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    res = run_federated(
        method,
        ds,
        part,
        seed=0,
        settings=RunSettings(device=device, client_workers=workers),
        log=lambda *_: None,
    )
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
    return [float(h["round_seconds"]) for h in res.history], peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--rounds", type=int, default=2, help="rounds timed per run (>= 2)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--only", nargs="*", help="run names to time (default: all)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument(
        "--client-workers",
        type=int,
        nargs="+",
        default=None,
        help="time each run at these client_workers (default: the config's)",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.config) as fh:
        cfg = yaml.safe_load(fh)
    training = {"rounds": 1, **cfg.get("training", {})}
    (dataset,) = cfg["datasets"]
    clients = max(p["num_clients"] for p in cfg["partitions"].values())
    ds, part = fake_data(dataset, clients)
    print(f"{args.config} on {args.device}, {torch.__version__}; {args.rounds} rounds per stage")
    rows, total = [], 0.0
    for name, run in cfg["runs"].items():
        if args.only and name not in args.only:
            continue
        for (label, method_name, spec, config_rounds), workers in itertools.product(
            stages(name, run, training), args.client_workers or [cfg.get("client_workers", 1)]
        ):
            if args.client_workers:
                label = f"{label}, {workers} worker(s)"
            t = time.time()
            seconds, peak = time_rounds(
                method_name, spec, ds, part, args.rounds, args.device, workers
            )
            steady = float(np.median(seconds[1:])) if len(seconds) > 1 else seconds[0]
            hours = steady * config_rounds / 3600
            total += hours * len(cfg.get("seeds", [0]))
            row = dict(
                stage=label,
                client_workers=workers,
                first_s=seconds[0],
                round_s=steady,
                rounds=config_rounds,
                est_hours_per_seed=hours,
                peak_gib=peak,
            )
            rows.append(row)
            print(
                f"  {label:24s} first round {seconds[0]:7.1f} s, then {steady:7.1f} s/round"
                f" x {config_rounds} rounds = {hours:6.2f} h per seed; peak {peak:5.1f} GiB"
                f"  ({time.time() - t:.0f} s)",
                flush=True,
            )
    if len(args.client_workers or [1]) == 1:
        print(f"whole config, every seed, one job at a time: {total:.1f} h")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": args.config, "device": args.device, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
