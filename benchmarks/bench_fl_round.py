"""A FedAvg round on this machine: the dfnas engine (clients one after another, and
shared among forked worker processes) against a plain PyTorch loop and, when the optional
``bench`` extra is installed (``pip install -e '.[bench]'``), Flower's ``run_simulation``
on the same workload, measured side by side in one run.

Workload (issue 14): the FedAvg CNN, 10 clients x 2,000 CIFAR-shaped images (random
pixels: speed does not depend on content), 1 local epoch of batch 32, SGD lr 0.05
(momentum 0.9, weight decay 5e-4), every client every round. Each contender runs
``--rounds`` rounds ``--repeats`` times; a round is timed from its start to the next
one's start, and the steady round is the median over rounds 2 .. R-1 of every repeat
(round 1 holds warm-up and Flower's worker start, round R is not timed). Every contender
gets the same model, tensors in the layout that is fastest here (channels_last) and the
same threads in all.

The compute floor is the same client training with nothing else: the clients split
among one 1-thread process per core, no transfer, no aggregation. An engine's round over
the floor's is its overhead; an engine cannot beat the floor by more than noise with the
same client compute. ``--bf16`` adds dfnas with ``training.precision: bf16``, which is
not the same arithmetic, so it is reported apart from the same-math ratios.

Start-up is timed apart, in fresh processes: from launching ``python`` to the engine
starting round 1 (imports, data, model), as a user's run pays it.

    python benchmarks/bench_fl_round.py [--clients 10] [--per-client 2000] [--bf16] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

SHAPE = (3, 32, 32)
LR, MOMENTUM, WEIGHT_DECAY, BATCH = 0.05, 0.9, 5e-4, 32


def client_arrays(k: int, per_client: int):
    """Client k's images and labels, the same in every process that asks."""
    import numpy as np

    rng = np.random.default_rng([k, 14])
    x = rng.integers(0, 256, (per_client, *SHAPE), dtype=np.uint8)
    return x, rng.integers(0, 10, per_client).astype(np.int64)


def cifar_shaped(clients: int, per_client: int, n_test: int):
    """The clients' data as one dataset (client k holds rows k*per_client ..)."""
    import numpy as np

    from dfnas.data import ImageDataset

    parts = [client_arrays(k, per_client) for k in range(clients)]
    return ImageDataset(
        name="cifar-shaped",
        x_train=np.concatenate([x for x, _ in parts]),
        y_train=np.concatenate([y for _, y in parts]),
        x_test=parts[0][0][:n_test],
        y_test=parts[0][1][:n_test],
        classes=[str(i) for i in range(10)],
    )


# -- the dfnas engine ------------------------------------------------------------------
def ours(
    clients: int, per_client: int, rounds: int, workers: int, precision: str = "fp32"
) -> list[float]:
    import numpy as np

    from dfnas.federated.config import TrainConfig
    from dfnas.federated.loop import run_federated
    from dfnas.federated.settings import RunSettings
    from dfnas.methods import METHODS, MethodSetup
    from dfnas.partition.split import local_test_split

    ds = cifar_shaped(clients, per_client, 100)
    split = np.array_split(np.arange(clients * per_client), clients)
    cfg = TrainConfig(
        rounds=rounds,
        local_epochs=1,
        batch_size=BATCH,
        lr=LR,
        lr_schedule="constant",
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        augment="none",
        eval_every=10**6,
        personalize_epochs=0,
        precision=precision,
    )
    starts: list[float] = []

    class Timed(METHODS.get("fedavg").implementation):
        def local_work(self, round_):  # asked once, as the round starts
            starts.append(time.perf_counter())
            return super().local_work(round_)

    setup = MethodSetup("cnn", {}, ds.in_shape, ds.num_classes, cfg)
    method = Timed(setup, METHODS.get("fedavg").options())
    part = local_test_split(split, 0.0, seed=0)
    run_federated(
        method,
        ds,
        part,
        0,
        settings=RunSettings(device="cpu", client_workers=workers),
        log=lambda *_: None,
    )
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


# -- a plain PyTorch loop ------------------------------------------------------------------
def prepared_client(k: int, per_client: int):
    """Client k's data as a careful hand-written client keeps it: float, normalized and
    channels_last, prepared once (the plain, floor and Flower clients share this)."""
    import torch

    x, y = client_arrays(k, per_client)
    xf = torch.from_numpy(x).float().div_(255).sub_(0.5).div_(0.25)
    return xf.contiguous(memory_format=torch.channels_last), torch.from_numpy(y)


def train_client(local, x, y, gen=None) -> None:
    """One local epoch of SGD on (x, y), in shuffled batches: the hand-written client."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD(local.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    order = torch.randperm(len(y), generator=gen)
    for s in range(0, len(order), BATCH):
        b = order[s : s + BATCH]
        opt.zero_grad()
        F.cross_entropy(local(x[b]), y[b]).backward()
        opt.step()


def plain(clients: int, per_client: int, rounds: int) -> list[float]:
    """What a careful first simulation looks like: float tensors prepared once,
    channels_last, a model copy per client, the weighted mean at the end of the round."""
    import copy

    import torch

    from dfnas.models import build_model

    data = [prepared_client(k, per_client) for k in range(clients)]
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10).to(memory_format=torch.channels_last)
    starts = []
    for r in range(rounds):
        starts.append(time.perf_counter())
        states = []
        for k, (x, y) in enumerate(data):
            local = copy.deepcopy(model)
            train_client(local, x, y, torch.Generator().manual_seed(r * 1000 + k))
            states.append(local.state_dict())
        model.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


# -- the compute floor ------------------------------------------------------------------
def floor(clients: int, per_client: int, rounds: int, workers: int) -> list[float]:
    """The round's compute alone, at its best split of the cores: ``workers`` forked
    processes of 1 thread, each training its share of the clients as ``plain`` does and
    sending nothing back (no aggregation, no transfer). No engine can beat it with the
    same client compute; how close one comes is its overhead."""
    import multiprocessing

    import torch

    from dfnas.models import build_model

    data = [prepared_client(k, per_client) for k in range(clients)]
    torch.manual_seed(0)
    model = build_model("cnn", SHAPE, 10).to(memory_format=torch.channels_last)

    def share(r: int, w: int) -> None:
        torch.set_num_threads(1)
        for k in range(w, clients, workers):
            local = build_model("cnn", SHAPE, 10).to(memory_format=torch.channels_last)
            local.load_state_dict(model.state_dict())
            x, y = data[k]
            train_client(local, x, y, torch.Generator().manual_seed(r * 1000 + k))

    mp = multiprocessing.get_context("fork")
    starts = []
    for r in range(rounds):
        starts.append(time.perf_counter())
        procs = [mp.Process(target=share, args=(r, w)) for w in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


# -- Flower ----------------------------------------------------------------------------
def flower(clients: int, per_client: int, rounds: int, cpus: int) -> list[float]:
    """Flower's run_simulation (Ray backend), ``cpus`` CPUs and torch threads per client:
    the client trains exactly as ``plain`` does; its data is prepared once per actor."""
    import logging

    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    client_app = ClientApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        import dfnas
        from dfnas.models import build_model

        cache = dfnas.__dict__.setdefault("_bench_cache", {})  # per actor process, kept
        torch.set_num_threads(cpus)
        k = int(context.node_config["partition-id"])
        if k not in cache:
            cache[k] = prepared_client(k, per_client)
        x, y = cache[k]
        model = build_model("cnn", SHAPE, 10).to(memory_format=torch.channels_last)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        train_client(model, x, y)
        content = RecordDict(
            {
                "arrays": ArrayRecord(model.state_dict()),
                "metrics": MetricRecord({"num-examples": len(y)}),
            }
        )
        return Message(content=content, reply_to=msg)

    logging.getLogger("flwr").setLevel(logging.WARNING)  # its per-round INFO lines
    starts: list[float] = []

    class TimedFedAvg(FedAvg):
        def configure_train(self, server_round, arrays, config, grid):
            starts.append(time.perf_counter())
            return super().configure_train(server_round, arrays, config, grid)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        from dfnas.models import build_model

        torch.manual_seed(0)
        net = build_model("cnn", SHAPE, 10)
        strategy = TimedFedAvg(fraction_train=1.0, fraction_evaluate=0.0)
        strategy.start(grid=grid, initial_arrays=ArrayRecord(net.state_dict()), num_rounds=rounds)

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=clients,
        backend_config={"client_resources": {"num_cpus": cpus, "num_gpus": 0.0}},
    )
    return [b - a for a, b in zip(starts, starts[1:], strict=False)]


# -- start-up ----------------------------------------------------------------------------
STARTUP = """
import sys, time
from dfnas.federated.settings import RunSettings
from dfnas.run import run_method
from dfnas.methods import METHODS
@METHODS.register("startup_probe")
class Probe(METHODS.get("fedavg").implementation):
    def local_work(self, round_):
        print(time.time(), flush=True)
        raise SystemExit(0)
run_method({"method": "startup_probe", "training": {"rounds": 1}}, sys.argv[1], sys.argv[2],
           0, sys.argv[3], settings=RunSettings(device="cpu", threads=2))
"""


def startup(clients: int, per_client: int, tmp: str) -> float:
    """Seconds from launching ``python`` to round 1 of ``dfnas run`` (the engine's own
    entry point: it imports what a run needs, reads the cached dataset and partition)."""

    from dfnas.data import load_cached
    from dfnas.partition.stage import write_partition

    data = os.path.join(tmp, "data.npz")
    if not os.path.exists(data):
        cifar_shaped(clients, per_client, 1000).save(data)
        write_partition(
            load_cached(data),
            {"partitioner": "iid", "num_clients": clients},
            os.path.join(tmp, "p"),
        )
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", STARTUP, data, os.path.join(tmp, "p", "partition.json"), tmp],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1]) - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--per-client", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="the machine's cores to use")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="also run dfnas with training.precision bf16 (different numerics: reported apart)",
    )
    args = parser.parse_args()
    if args.quick:
        args.clients, args.per_client, args.rounds, args.repeats = 4, 128, 3, 1
    import torch

    torch.set_num_threads(args.threads)
    contenders = {
        f"dfnas, sequential, {args.threads} threads": lambda: ours(
            args.clients, args.per_client, args.rounds, 1
        ),
        f"dfnas, {args.threads} client workers x 1 thread": lambda: ours(
            args.clients, args.per_client, args.rounds, args.threads
        ),
        f"plain loop, {args.threads} threads": lambda: plain(
            args.clients, args.per_client, args.rounds
        ),
        f"compute floor, {args.threads} x 1-thread processes": lambda: floor(
            args.clients, args.per_client, args.rounds, args.threads
        ),
    }
    if args.bf16:
        contenders[f"dfnas, {args.threads} client workers, bf16 (*)"] = lambda: ours(
            args.clients, args.per_client, args.rounds, args.threads, "bf16"
        )
    try:
        import flwr

        for cpus in sorted({1, args.threads}):
            contenders[f"Flower {flwr.__version__}, {cpus} CPU(s) per client"] = lambda cpus=cpus: (
                flower(args.clients, args.per_client, args.rounds, cpus)
            )
    except ImportError:
        print("Flower: not installed, skipped (pip install -e '.[bench]' adds flwr[simulation])")
    steady: dict[str, float] = {}
    for name, run in contenders.items():
        rounds = []
        for _ in range(args.repeats):
            times = run()  # rounds 1 .. R-1, each from its start to the next one's
            rounds += times[1:] if len(times) > 1 else times
        steady[name] = statistics.median(rounds)
        print(
            f"{name:44s} steady round {steady[name]:7.2f} s  (rounds: "
            f"{', '.join(f'{t:.2f}' for t in rounds)})",
            flush=True,
        )
    print(
        f"\nsetup: FedAvg CNN, {args.clients} clients x {args.per_client} CIFAR-shaped "
        f"images, 1 epoch of batch {BATCH}, {args.threads} cores, torch {torch.__version__}"
    )
    same_math = {k: v for k, v in steady.items() if not k.endswith("(*)")}
    best_ours = min(v for k, v in same_math.items() if k.startswith("dfnas"))
    flowers = {k: v for k, v in steady.items() if k.startswith("Flower")}
    for name, t in steady.items():
        print(f"  {name:44s} {t:7.2f} s   best dfnas speed-up over it: {t / best_ours:5.2f}x")
    if flowers:
        best = min(flowers, key=flowers.get)
        print(f"best dfnas vs Flower's best ({best}): {flowers[best] / best_ours:.2f}x")
        for name in steady.keys() - same_math.keys():
            print(
                f"(*) {name} vs Flower's best in fp32: {flowers[best] / steady[name]:.2f}x "
                "(not the same math: bf16 autocast, a different workload)"
            )
    floor_s = next(v for k, v in steady.items() if k.startswith("compute floor"))
    print(f"best dfnas (fp32) over the compute floor: {best_ours / floor_s:.2f}x its time")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        times = [startup(args.clients, args.per_client, tmp) for _ in range(3)]
    print(
        f"start-up to round 1 of `dfnas run`: median {statistics.median(times):.2f} s "
        f"({', '.join(f'{t:.2f}' for t in times)})"
    )


if __name__ == "__main__":
    main()
