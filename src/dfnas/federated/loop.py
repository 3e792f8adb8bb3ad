"""The federated loop: rounds, sampling, local training, aggregation, evaluation,
checkpoints and cost accounting, owned once for every method::

    result = run_federated(method, dataset, partition, seed=0,
                           settings=RunSettings(device="cpu"),
                           checkpoint=CheckpointFile(Path("ckpt.pt"), fingerprint="run-a"))
    result.history[-1]["test_accuracy"], result.metrics["train_flops"]

Simulated clients run one after another in this process on one reusable worker network
(``load_state_dict`` into it instead of a deepcopy per client), or, with the settings'
``client_workers``, shared among forked worker processes (``federated.clients``). The
loop never looks at a method's name: everything method-specific goes through the hooks
of the method (``federated.protocol``).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from dfnas.cost import Stopwatch, count_params, forward_flops, peak_memory_bytes, tensor_bytes
from dfnas.data import ImageDataset
from dfnas.errors import ConfigError
from dfnas.federated.batched import batching_runner, check_batching
from dfnas.federated.checkpoint import CheckpointFile, load_checkpoint, save_checkpoint
from dfnas.federated.clients import ClientReply, RoundJob, local_runner
from dfnas.federated.context import ServerContext
from dfnas.federated.data import DeviceData, index_tensor, split_validation
from dfnas.federated.evaluation import evaluate
from dfnas.federated.personalize import personalize, summarize
from dfnas.federated.precision import check_precision
from dfnas.federated.round_tally import RoundTally, check_finite_state
from dfnas.federated.sampling import sample_clients, server_seed, surviving_clients
from dfnas.federated.settings import RunSettings
from dfnas.federated.simulation import Simulation
from dfnas.machine import machine_info
from dfnas.partition import ClientPartition

if TYPE_CHECKING:  # the engine's contract with methods, which build on it (never the reverse)
    from dfnas.federated.protocol import FederatedMethod

COST_KEYS = ("bytes_down", "bytes_up", "train_flops", "client_seconds", "client_cpu_seconds")


@dataclass
class RunResult:
    model: nn.Module
    model_spec: dict
    history: list[dict]
    metrics: dict[str, Any]
    personalized: list[dict] = field(default_factory=list)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device: '{name}' asked for, but this machine's torch sees no GPU "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use auto or cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device: '{name}' but only {torch.cuda.device_count()} GPU(s) here")
    return device


def use_channels_last(
    setting: bool | str, model: nn.Module, device: torch.device, precision: str = "fp32"
) -> bool:
    """``auto``: channels_last on CPU in fp32 for the networks that declare it faster
    there (``cpu_channels_last = True`` on the model class), NCHW otherwise.

    In fp32 both layouts give gradients as exact as NCHW's (the norms run the NCHW
    kernel in either, ``models.norm``; tests/test_layout.py checks every network), so
    the choice is speed alone, measured per network by benchmarks/bench_layout.py. bf16
    stays NCHW: oneDNN's bf16 channels_last depthwise conv with dilation returns wrong
    weight gradients (DARTS's dil_conv, benchmarks/layout_faults.py), and the config
    check refuses ``channels_last: true`` with bf16 on CPU."""
    if setting == "auto":
        declared = bool(getattr(model, "cpu_channels_last", False))
        return device.type == "cpu" and precision == "fp32" and declared
    return bool(setting)


class _Progress:
    def __init__(self, total: int, start: int, log: Any) -> None:
        self.total, self.start, self.log = total, start, log
        self.t0 = time.perf_counter()

    def round_done(self, row: dict) -> None:
        done = row["round"] + 1
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(done - self.start, 1) * (self.total - done)
        acc = row.get("test_accuracy")
        evaluated = f"test acc {acc:.4f} loss {row['test_loss']:.4f} | " if acc is not None else ""
        self.log(
            f"round {done}/{self.total} | {evaluated}train loss {row['train_loss']:.4f} | "
            f"{row['clients_replied']}/{row['clients_sampled']} clients | "
            f"elapsed {elapsed:.1f}s, ETA {eta:.1f}s"
        )


def run_federated(
    method: FederatedMethod,
    dataset: ImageDataset,
    partition: ClientPartition,
    seed: int,
    settings: RunSettings | None = None,
    checkpoint: CheckpointFile | None = None,
    stop_after: int | None = None,
    log: Any = print,
    personalize_final: bool = True,
) -> RunResult | None:
    """Run every round (resuming from ``checkpoint`` if it holds this run) and return the
    final model, history and metrics. ``settings``: where and how clients train (the
    device; forked client workers, which share this process's threads and give the result
    of one client after another at the same threads per client; a deployment's nodes).
    ``stop_after=r`` returns None once round r (1-based) is checkpointed, which is how
    tests simulate a killed job. ``personalize_final``: the final model is a deliverable
    worth personalized evaluation (a search stage's supernet, rebuilt and trained by the
    next stage, is not)."""
    settings = settings or RunSettings()
    sim, model, channels_last = _simulation(method, dataset, partition, seed, settings, log)
    cfg, device, data = method.train_cfg, sim.device, sim.data
    start, history = 0, []
    totals = dict.fromkeys(COST_KEYS, 0) | {"wall_seconds": 0.0}
    client_store: dict[int, dict] = {}
    state = load_checkpoint(checkpoint.path, checkpoint.fingerprint, log) if checkpoint else None
    if state is not None:
        method.load_state_dict(state["method"])
        model = method.build_model()
        model.load_state_dict(state["model"])
        start, history, totals = state["round"] + 1, state["history"], state["totals"]
        client_store = state["client_store"]
        log(f"resuming after round {start} from {checkpoint.path}")
    model = place(model, device, channels_last)
    worker = copy.deepcopy(model)
    progress = _Progress(cfg.rounds, start, log)

    for r in range(start, cfg.rounds):
        round_clock = Stopwatch(device)
        with round_clock:
            row, model, worker, server = _run_round(sim, model, worker, r, client_store)
            if (r + 1) % cfg.eval_every == 0 or r == cfg.rounds - 1:
                # not the clients' work: off their clocks (client_seconds), in round_seconds
                target = method.evaluation_model(model, server)
                row["test_accuracy"], row["test_loss"] = evaluate(target, data, cfg.eval_batch_size)
        row["round_seconds"] = round_clock.wall
        row["peak_memory_bytes"] = max(row.get("peak_memory_bytes", 0), peak_memory_bytes(device))
        for key in COST_KEYS:
            totals[key] += row[key]
        totals["wall_seconds"] += round_clock.wall
        history.append(row)
        progress.round_done(row)
        if checkpoint:
            save_checkpoint(
                checkpoint.path,
                {
                    "fingerprint": checkpoint.fingerprint,
                    "round": r,
                    "model": model.state_dict(),
                    "method": method.state_dict(),
                    "history": history,
                    "totals": totals,
                    "client_store": client_store,
                },
            )
        if stop_after is not None and r + 1 >= stop_after:
            return None

    return _finish(sim, model, history, totals, personalize_final)


def set_progress(model: nn.Module, round_: int, rounds: int) -> None:
    """Before a round, on the server's network and wherever a client trains: a network
    whose behaviour follows training progress (DARTS's drop-path grows) is told it."""
    if hasattr(model, "set_progress"):
        model.set_progress(round_ / rounds)


def _simulation(
    method: FederatedMethod,
    dataset: ImageDataset,
    partition: ClientPartition,
    seed: int,
    settings: RunSettings,
    log: Any,
) -> tuple[Simulation, nn.Module, bool]:
    """The run's fixed setting, its freshly built network (seeded) and its layout."""
    cfg = method.train_cfg
    device = resolve_device(str(settings.device))
    client_workers, clients = settings.client_workers, settings.clients
    if client_workers < 1:
        raise ConfigError(f"client_workers: expected an integer >= 1, got {client_workers}")
    if client_workers > 1 and device.type != "cpu":
        raise ConfigError(
            f"client_workers: {client_workers} worker processes train clients on CPU only; "
            f"use 1 on {device.type}"
        )
    check_precision(cfg.precision, device)
    torch.manual_seed(seed)
    model = method.build_model()
    runner = clients or local_runner(client_workers)
    if cfg.client_batching and clients is None:  # a deployment's clients each train alone
        check_batching(method, model)
        runner = batching_runner(runner)
    channels_last = use_channels_last(cfg.channels_last, model, device, cfg.precision)
    data = DeviceData.from_dataset(dataset, device, cfg.augment, channels_last)
    train_idx, val_idx = _split_validation(partition, method.validation_fraction, device)
    sim = Simulation(
        method=method,
        data=data,
        partition=partition,
        train_idx=train_idx,
        val_idx=val_idx,
        per_round=cfg.per_round(partition.num_clients),
        seed=seed,
        device=device,
        client_workers=client_workers,
        log=log,
        clients=runner,
    )
    return sim, model, channels_last


def place(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """On the device, in the layout the run trains in (a deployed client places its own
    network the same way)."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _run_round(
    sim: Simulation,
    model: nn.Module,
    worker: nn.Module,
    r: int,
    client_store: dict[int, dict],
) -> tuple[dict, nn.Module, nn.Module, ServerContext]:
    method, seed, device = sim.method, sim.seed, sim.device
    cfg = method.train_cfg
    work = method.local_work(r)
    sampled = sample_clients(len(sim.train_idx), sim.per_round, seed, r)
    replied = surviving_clients(sampled, cfg.dropout, seed, r)
    row = {"round": r, "stage": work.stage, "lr": work.lr}
    row |= {"clients_sampled": len(sampled), "clients_replied": len(replied)}
    row |= dict.fromkeys(COST_KEYS, 0)
    for net in (model, worker):
        set_progress(net, r, cfg.rounds)
    job = RoundJob(sim, model, worker, work, model.state_dict(), r, client_store)
    for k in sampled:  # every sampled client downloads; a dropped one never replies
        row["bytes_down"] += tensor_bytes(job.download(k))
    agg = method.aggregator()
    tally = RoundTally(row, device, r)

    def receive(reply: ClientReply) -> None:  # called in sampled order, wherever it ran
        client_store[reply.client] = reply.store
        agg.add(reply.upload, reply.weight)  # copies: a reply may alias the worker network
        tally.add(reply)

    sim.clients(job, replied, receive)
    tally.close()
    # server-side randomness must not depend on which process trained the last client
    torch.manual_seed(server_seed(seed, r))
    if replied:
        new_state = agg.result(like=job.global_state)
        if not set(new_state) <= set(job.global_state):
            raise RuntimeError("payload holds keys the server model does not have")
        check_finite_state(new_state, r)
        model.load_state_dict(new_state, strict=False)
    server = ServerContext(sim.data, sim.train_idx, replied, row, work.batch_size)
    new_model = method.end_round(model, r, server)
    if new_model is not model:
        model = place(new_model, device, _is_channels_last(model))
        worker = copy.deepcopy(model)
    return row, model, worker, server


def _split_validation(
    partition: ClientPartition, fraction: float, device: torch.device
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Every client's train indices, and its local validation split when a method asks
    for one (FedNAS): ``federated.data.split_validation`` per client."""
    splits = [split_validation(k, idx, fraction) for k, idx in enumerate(partition.train)]
    train = [index_tensor(t, device) for t, _ in splits]
    if fraction <= 0:
        return train, None
    return train, [index_tensor(v, device) for _, v in splits]


def _is_channels_last(model: nn.Module) -> bool:
    """The layout the model was placed in, read from its first 4-D weight whose layout is
    unambiguous (a 1-input-channel stem or a depthwise kernel is contiguous in both)."""
    for p in model.parameters():
        if p.dim() == 4 and not (
            p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
        ):
            return p.is_contiguous(memory_format=torch.channels_last)
    return False


def _finish(
    sim: Simulation,
    model: nn.Module,
    history: list[dict],
    totals: dict,
    personalize_final: bool,
) -> RunResult:
    method, data, partition, seed, device = (
        sim.method,
        sim.data,
        sim.partition,
        sim.seed,
        sim.device,
    )
    cfg = method.train_cfg
    final, spec = method.final_model(model)
    final = place(final, device, _is_channels_last(model))
    accuracy, loss = evaluate(final, data, cfg.eval_batch_size)
    machine = machine_info(device)
    clock = Stopwatch(device)
    with clock:
        rows = personalize(final, data, partition, cfg, seed) if personalize_final else []
    metrics = {
        "accuracy": accuracy,
        "loss": loss,
        **summarize(rows),
        "params": count_params(final),
        "macs": forward_flops(final, method.setup.in_shape) // 2,
        **{key: totals[key] for key in COST_KEYS},
        "stages": _stage_totals(history),
        "wall_seconds": totals["wall_seconds"],
        "personalize_seconds": clock.wall,
        "peak_memory_bytes": max(h["peak_memory_bytes"] for h in history),
        # one client's training memory (cost.memory), the largest measured step
        "client_memory_bytes": max(h.get("client_memory_bytes", 0) for h in history),
        # on a GPU also the allocator's peak while one client trained (reset per client)
        **(
            {"client_gpu_peak_bytes": max(h["client_gpu_peak_bytes"] for h in history)}
            if "client_gpu_peak_bytes" in history[-1]
            else {}
        ),
        "rounds": len(history),
        "seed": seed,
        "num_clients": partition.num_clients,
        "clients_per_round": cfg.per_round(partition.num_clients),
        "device": str(device),
        "device_name": machine.get("gpu", machine["cpu"]),
        "threads": torch.get_num_threads(),
        "client_workers": sim.client_workers,
        "channels_last": _is_channels_last(model),
        "precision": cfg.precision,
        **machine,
        **method.extra_metrics(),
    }
    sim.log(
        f"final: test accuracy {accuracy:.4f}, personalized "
        f"{metrics['personalized_accuracy_mean']:.4f} +- {metrics['personalized_accuracy_std']:.4f}"
    )
    return RunResult(final, spec, history, metrics, rows)


def _stage_totals(history: list[dict]) -> dict[str, dict]:
    """Costs per stage (DFNAS: search, train), under the same keys as the totals."""
    stages: dict[str, dict] = {}
    for row in history:
        acc = stages.setdefault(row["stage"], dict.fromkeys(COST_KEYS, 0) | {"rounds": 0})
        for key in COST_KEYS:
            acc[key] += row[key]
        acc["rounds"] += 1
    return stages
