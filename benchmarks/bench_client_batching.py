"""Client steps per second through the engine, per-client loop against batched clients
(``training.client_batching``), side by side in one run, for the verdict's networks.

One FedAvg round of ``--clients`` clients x ``--steps`` local steps of ``--batch`` samples
on CIFAR-shaped random images (3 x side x side; the verdict's proxy is 16 x 16), run
through ``run_federated`` as a run would, alternating the contenders, median of the
repeats after one warm-up each. Contenders per thread count:
- ``loop``: the reference, clients one after another in this process;
- ``loop, forked``: the loop over ``threads`` forked workers of one thread (what the
  verdict's configs run, ``client_workers``), at 2+ threads only;
- ``batched``: every client of the round as one computation (``federated.batched``).

The speed-up is the loop's (best of the loop contenders) client CPU seconds over
batched's; steps/s is wall. Networks whose method has its own client round (DFNAS's
supernet paths, FedNAS's search and its child with drop path) have no batched path yet
and are not listed; the verdict projection below counts them at 1x.

    python benchmarks/bench_client_batching.py [--side 16] [--threads 1 2] [--repeats 3]
        [--verdict archive/verdict_cifar10_16 --seed 0]   # project one archived seed
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from dfnas.data import ImageDataset
from dfnas.federated.config import TrainConfig
from dfnas.federated.loop import run_federated
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS, MethodSetup
from dfnas.partition import make_partition

NETWORKS = {
    "cnn": ("cnn", {}),
    "shufflenetv2 (fixed)": ("shufflenetv2", {}),
    "shufflenetv2 (random child)": ("shufflenetv2", {"ops": "random", "arch_seed": 0}),
    "darts C8 3 cells (no drop path)": ("darts", {"C": 8, "layers": 3, "drop_path": 0.0}),
}
# verdict runs -> the network above they train (FedAvg runs only: the others keep the loop)
VERDICT_RUNS = {
    "fedavg_cnn": "cnn",
    "fedavg_shufflenet": "shufflenetv2 (fixed)",
    "fedavg_random": "shufflenetv2 (random child)",
}


def dataset(side: int, clients: int, per_client: int) -> ImageDataset:
    rng = np.random.default_rng(0)
    n = clients * per_client
    x = rng.integers(0, 256, (n + 100, 3, side, side), dtype=np.uint8)
    y = rng.integers(0, 10, n + 100).astype(np.int64)
    return ImageDataset("bench", x[:n], y[:n], x[n:], y[n:], [str(i) for i in range(10)])


def one_round(ds, part, model, args, steps, batch, batching, workers) -> tuple[float, float]:
    """(wall seconds of the round, summed client CPU seconds)."""
    cfg = TrainConfig.from_dict(
        dict(
            rounds=1,
            local_steps=steps,
            batch_size=batch,
            personalize_epochs=0,
            eval_every=1,
            client_batching=batching,
        )
    )
    setup = MethodSetup(model, args, ds.in_shape, ds.num_classes, cfg)
    method = METHODS.get("fedavg").build(setup)
    result = run_federated(
        method,
        ds,
        part,
        seed=0,
        settings=RunSettings(device="cpu", client_workers=workers),
        log=lambda *_: None,
    )
    row = result.history[0]
    return row["round_seconds"], row["client_cpu_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--side", type=int, default=16)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    ap.add_argument("--verdict", type=Path, help="an archived verdict to project")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ds = dataset(a.side, a.clients, a.steps * a.batch)
    part = make_partition(ds.y_train, {"partitioner": "iid", "num_clients": a.clients})
    steps = a.clients * a.steps
    print(
        f"torch {torch.__version__}, {a.clients} clients x {a.steps} steps x {a.batch}, "
        f"3x{a.side}x{a.side}, median of {a.repeats}"
    )
    print("| network | threads | contender | client steps/s | client CPU ms/step | speed-up |")
    print("|---|---|---|---|---|---|")
    speedup: dict[str, float] = {}
    for name in a.networks:
        model, args = NETWORKS[name]
        for threads in a.threads:
            torch.set_num_threads(threads)
            contenders = {"loop": (False, 1), "batched": (True, 1)}
            if threads > 1:
                contenders["loop, forked"] = (False, threads)
            times: dict[str, list[tuple[float, float]]] = {c: [] for c in contenders}
            for batching, workers in contenders.values():  # warm-up, not counted
                one_round(ds, part, model, args, 1, a.batch, batching, workers)
            for _ in range(a.repeats):
                for label, (batching, workers) in contenders.items():
                    times[label].append(
                        one_round(ds, part, model, args, a.steps, a.batch, batching, workers)
                    )
            med = {
                c: (statistics.median(w for w, _ in t), statistics.median(c_ for _, c_ in t))
                for c, t in times.items()
            }
            best_loop = min(cpu for c, (_, cpu) in med.items() if c != "batched")
            for label, (wall, cpu) in med.items():
                ratio = best_loop / cpu if label == "batched" else ""
                if label == "batched" and threads == max(a.threads):
                    speedup[name] = best_loop / cpu
                print(
                    f"| {name} | {threads} | {label} | {steps / wall:.1f} | "
                    f"{cpu / steps * 1000:.1f} | {f'{ratio:.2f}x' if ratio else ''} |",
                    flush=True,
                )
    if a.verdict:
        project(a.verdict, a.seed, speedup)


def project(archive: Path, seed: int, speedup: dict[str, float]) -> None:
    """One archived seed's summed client CPU, and the same with the batchable runs'
    share divided by the measured speed-up: a projection, not a run."""
    before = after = 0.0
    print(f"\nprojection for seed {seed} of {archive} (client CPU seconds)")
    for path in sorted(archive.glob(f"runs/*/*/*/seed{seed}/metrics.json")):
        run = path.parts[-3]
        cpu = json.loads(path.read_text())["client_cpu_seconds"]
        net = VERDICT_RUNS.get(run.split("-a")[0])
        factor = speedup.get(net, 1.0) if net else 1.0
        before += cpu
        after += cpu / factor
        print(f"  {run}: {cpu:.0f} s -> {cpu / factor:.0f} s ({factor:.2f}x)")
    print(f"  seed {seed}: {before:.0f} s -> {after:.0f} s, {before / after:.2f}x")


if __name__ == "__main__":
    main()
