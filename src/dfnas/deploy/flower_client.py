"""The Flower ClientApp: one deployed client's local round, with this package's step.

A SuperNode is started with its own data and its client number (``--node-config
'partition-id=3 shard="shards/client3.npz"'``); the app answers the server's query with
that number, and each train message with one local round of the run's method: the network
the method builds, the download loaded into it, then exactly the in-process loop's client
code (``federated.clients.RoundJob.train``) over the client's own images. The run's spec,
seed and thread count come from the run config the ServerApp was started with.
"""

from __future__ import annotations

import json

import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from dfnas.deploy import flower_messages as fm
from dfnas.deploy.shards import Shard, read_shard
from dfnas.errors import DfnasError
from dfnas.federated.clients import ClientReply, RoundJob, in_process
from dfnas.federated.context import StepContext
from dfnas.federated.data import DeviceData, index_tensor, split_validation
from dfnas.federated.loop import place, set_progress, use_channels_last
from dfnas.federated.simulation import Simulation
from dfnas.methods import METHODS, FedMethod
from dfnas.run import build_method

app = ClientApp()


def node_client(context: Context) -> int:
    value = context.node_config.get("partition-id")
    if value is None:
        raise DfnasError("SuperNode: --node-config needs partition-id=<client number>")
    return int(value)


def _shard(path: str, client: int) -> Shard:
    shard = read_shard(path)
    if shard.client != client:
        raise DfnasError(f"{path}: holds client {shard.client}'s data, not client {client}'s")
    return shard


def _method(run_config: dict, shard: Shard) -> FedMethod:
    spec = json.loads(str(run_config["spec"]))
    stages = METHODS.get(spec["method"]).stages
    if len(stages) != 1:
        raise DfnasError(f"method '{spec['method']}' has {len(stages)} stages; deploy runs one")
    return build_method(spec, stages[0], shard.in_shape, shard.num_classes)


@app.query()
def identify(msg: Message, context: Context) -> Message:
    """Which client of the partition this node is: the server maps clients to nodes."""
    content = RecordDict({"node": ConfigRecord({"client": node_client(context)})})
    return Message(content, reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One local round of client ``partition-id`` on its shard."""
    rc = context.run_config
    threads = int(rc.get("threads", 0))
    if threads:
        torch.set_num_threads(threads)
    k = node_client(context)
    shard = _shard(str(context.node_config.get("shard", "")), k)
    received, ctx, method_state = fm.read_train(msg.content)
    if ctx.client != k:
        raise DfnasError(f"node of client {k} was sent client {ctx.client}'s round")
    method = _method(rc, shard)
    method.load_state_dict(method_state)
    reply = local_round(method, shard, received, ctx, seed=int(rc["seed"]))
    return Message(fm.reply_content(reply), reply_to=msg)


def local_round(
    method: FedMethod,
    shard: Shard,
    received: dict[str, torch.Tensor],
    ctx: StepContext,
    seed: int,
) -> ClientReply:
    """The in-process loop's client code on this client's own data: its network is the one
    the method builds now (the supernet, or DFNAS's child), holding what was received."""
    device = torch.device("cpu")
    cfg = method.train_cfg
    net = method.build_model()
    channels_last = use_channels_last(cfg.channels_last, net, device, cfg.precision)
    net = place(net, device, channels_last)
    missing = set(received) - set(net.state_dict())
    if missing:
        raise DfnasError(f"received tensors this client's network lacks: {sorted(missing)[:3]}")
    net.load_state_dict(received, strict=False)  # path-only downloads hold only their ops
    set_progress(net, ctx.round, cfg.rounds)
    empty = (shard.x[:0], shard.y[:0])
    data = DeviceData.from_arrays(
        (shard.x, shard.y), empty, (shard.mean, shard.std), device, cfg.augment, channels_last
    )
    train_idx, val_idx = split_validation(ctx.client, shard.indices, method.validation_fraction)
    k = ctx.client
    val = None if val_idx is None else {k: index_tensor(shard.positions(val_idx), device)}
    sim = Simulation(
        method=method,
        data=data,
        partition=None,  # type: ignore[arg-type]  # a client sees no partition but its own
        train_idx={k: index_tensor(shard.positions(train_idx), device)},  # type: ignore[arg-type]
        val_idx=val,  # type: ignore[arg-type]
        per_round=1,
        seed=seed,
        device=device,
        client_workers=1,
        log=print,
        clients=in_process,
    )
    state = {name: t.clone() for name, t in net.state_dict().items()}
    ctx.global_state = state
    job = RoundJob(sim, net, net, method.local_work(ctx.round), state, ctx.round, {k: ctx.store})
    return job.train(ctx)
