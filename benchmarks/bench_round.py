"""Round throughput of the dfnas loop against a naive reference loop, and achieved
training FLOP/s against this machine's fp32 matmul FLOP/s, measured in one run.

The naive loop is what a first FL simulation looks like: a deepcopy of the global model per
client, a plain SGD optimizer, NCHW tensors, the state dicts stacked and averaged at the
end. Both loops train the FedAvg CNN on the same CIFAR-shaped clients (random pixels:
throughput does not depend on content), the same batches and epochs, without
augmentation; they alternate, and the median of the repeats is reported.

    python benchmarks/bench_round.py [--clients 10] [--per-client 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from dfnas.cost import train_flops
from dfnas.data import ImageDataset
from dfnas.federated.config import TrainConfig
from dfnas.federated.data import DeviceData, index_tensor
from dfnas.federated.loop import run_federated
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS, MethodSetup
from dfnas.models import build_model
from dfnas.partition.split import local_test_split

SHAPE = (3, 32, 32)


def make_data(clients: int, per_client: int) -> tuple[ImageDataset, object]:
    rng = np.random.default_rng(0)
    n = clients * per_client
    ds = ImageDataset(
        name="cifar-shaped",
        x_train=rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8),
        y_train=rng.integers(0, 10, n).astype(np.int64),
        x_test=rng.integers(0, 256, (100, *SHAPE), dtype=np.uint8),
        y_test=rng.integers(0, 10, 100).astype(np.int64),
        classes=[str(i) for i in range(10)],
    )
    parts = np.array_split(np.arange(n), clients)
    return ds, local_test_split(parts, 0.0, seed=0)


def train_cfg(rounds: int, batch: int, channels_last: bool | str) -> TrainConfig:
    return TrainConfig(
        rounds=rounds,
        local_epochs=1,
        batch_size=batch,
        lr=0.01,
        lr_schedule="constant",
        augment="none",
        eval_every=10**6,
        personalize_epochs=0,
        channels_last=channels_last,
    )


def ours(ds, part, rounds: int, batch: int, channels_last: bool | str) -> tuple[float, float]:
    """(samples/s over whole rounds, training FLOP/s over client time)."""
    method = METHODS.get("fedavg").build(
        MethodSetup("cnn", {}, ds.in_shape, ds.num_classes, train_cfg(rounds, batch, channels_last))
    )
    res = run_federated(
        method, ds, part, seed=0, settings=RunSettings(device="cpu"), log=lambda *_: None
    )
    hist = res.history
    # the last round also evaluates the (100-sample) test set; count training rounds only
    seconds = sum(h["client_seconds"] for h in hist) + sum(
        h["round_seconds"] - h["client_seconds"] for h in hist[:-1]
    )
    samples = sum(h["samples"] for h in hist)
    return samples / seconds, res.metrics["train_flops"] / res.metrics["client_seconds"]


def naive(ds, part, rounds: int, batch: int) -> float:
    torch.manual_seed(0)
    global_model = build_model("cnn", ds.in_shape, ds.num_classes)
    data = DeviceData.from_dataset(ds, torch.device("cpu"), "none", channels_last=False)
    idx = [index_tensor(t, torch.device("cpu")) for t in part.train]
    samples, t0 = 0, time.perf_counter()
    for _ in range(rounds):
        states, weights = [], []
        for k, ik in enumerate(idx):
            local = copy.deepcopy(global_model)
            opt = torch.optim.SGD(local.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
            gen = torch.Generator().manual_seed(k)
            order = ik[torch.randperm(len(ik), generator=gen)]
            for s in range(0, len(order), batch):
                b = order[s : s + batch]
                x = data.x_train[b].float().mul(data.scale).sub(data.shift)
                opt.zero_grad()
                F.cross_entropy(local(x), data.y_train[b]).backward()
                opt.step()
                samples += len(b)
            states.append(local.state_dict())
            weights.append(len(ik))
        w = torch.tensor(weights, dtype=torch.float32) / sum(weights)
        avg = {}
        for key in states[0]:
            stacked = torch.stack([s[key].float() for s in states])
            avg[key] = (stacked * w.view(-1, *[1] * (stacked.dim() - 1))).sum(0)
        global_model.load_state_dict(avg)
    return samples / (time.perf_counter() - t0)


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.per_client, args.rounds, args.repeats = 2, 128, 1, 1
    torch.set_num_threads(args.threads)
    ds, part = make_data(args.clients, args.per_client)

    results: dict[str, list[float]] = {"naive": [], "ours_nchw": [], "ours": [], "flops": []}
    peak = []
    naive(ds, part, 1, args.batch)  # warm-up: first-touch allocations, oneDNN kernel choice
    for _ in range(args.repeats):
        peak.append(matmul_flops())
        results["naive"].append(naive(ds, part, args.rounds, args.batch))
        sps, _ = ours(ds, part, args.rounds, args.batch, False)
        results["ours_nchw"].append(sps)
        sps, fps = ours(ds, part, args.rounds, args.batch, "auto")
        results["ours"].append(sps)
        results["flops"].append(fps)
    med = {k: statistics.median(v) for k, v in results.items()}
    peak_flops = statistics.median(peak)
    per_sample = train_flops(build_model("cnn", SHAPE, 10), SHAPE)
    print(f"machine: {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(
        f"setup: FedAvg CNN, {args.clients} clients x {args.per_client} samples, batch "
        f"{args.batch}, {args.rounds} rounds, median of {args.repeats}"
    )
    print(f"fp32 matmul (2048^3):          {peak_flops / 1e9:8.1f} GFLOP/s")
    print(f"CNN training FLOPs per sample: {per_sample / 1e6:8.1f} MFLOP (fwd + bwd)")
    print(f"naive loop (NCHW, deepcopy):   {med['naive']:8.0f} samples/s")
    print(f"dfnas loop, NCHW:              {med['ours_nchw']:8.0f} samples/s")
    print(f"dfnas loop, default layout:    {med['ours']:8.0f} samples/s")
    print(
        f"ratio dfnas NCHW / naive:      {med['ours_nchw'] / med['naive']:8.3f}  "
        "(loop overhead; goal >= 0.95)"
    )
    print(f"ratio dfnas default / naive:   {med['ours'] / med['naive']:8.3f}")
    print(f"achieved training FLOP/s:      {med['flops'] / 1e9:8.1f} GFLOP/s")
    print(f"ratio achieved / matmul:       {med['flops'] / peak_flops:8.3f}  (goal >= 0.40)")


if __name__ == "__main__":
    main()
