"""A round's clients trained as one computation (``training.client_batching``).

Where every client of a round runs the plain FedAvg step (SGD with momentum and weight
decay on the cross-entropy of one network), the clients differ only in their data. Their
weights are stacked along a new first dimension and each step is one ``torch.func.vmap``
of the gradient over the stack: each client's own weights, BatchNorm running statistics,
momentum, batches and generator, exactly as ``federated.clients.RoundJob.train`` keeps
them, but one wide forward and backward (vmap turns K convolutions into one grouped
convolution) instead of K narrow ones. Small networks, whose convolutions run far below
the core's rate, gain most (``benchmarks/bench_client_batching.py``).

The arithmetic is the per-client loop's in float64 (``tests/test_client_batching.py``
compares every reply to 1e-10); in float32 the grouped kernels sum in another order, so
results are close but not bit-identical, which is why this is a setting of the run's
``training`` (part of its identity) and the per-client loop stays the reference. A step
is one computation, so the round's wall and CPU seconds are shared equally among its
clients; a client's memory and FLOPs are those of one client alone, measured as the loop
measures them (its first step, on a copy of the network).

A method takes this path only if its client round is FedAvg's unchanged
(``can_batch_clients``); the others keep their own runner.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad_and_value, vmap

from dfnas.cost import Stopwatch
from dfnas.cost.memory import TrainingMemory
from dfnas.errors import ConfigError
from dfnas.federated.clients import ClientReply, ClientRunner, RoundJob

Stack = dict[str, Tensor]


def batching_runner(fallback: ClientRunner) -> ClientRunner:
    """Batched clients; ``fallback`` for a round of one client (``check_batching`` has
    refused, at start, a method whose clients cannot be batched)."""

    def batched(job: RoundJob, clients: list[int], receive: Callable[[ClientReply], None]) -> None:
        if len(clients) <= 1:
            return fallback(job, clients, receive)
        for reply in train_batched(job, clients):
            receive(reply)
        return None

    return batched


def check_batching(method, model: nn.Module) -> None:
    """Refuse, in one line, a run that asks for batched clients it cannot have."""
    cfg = method.train_cfg
    if not method.can_batch_clients():
        raise ConfigError(
            "training.client_batching: this method's clients do more than FedAvg's SGD step "
            "(their own optimizer, step, upload or validation split); set it to false"
        )
    if cfg.precision != "fp32":
        raise ConfigError("training.client_batching: batched clients train in fp32 only")
    dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    if dropout or getattr(model, "drop_path_max", 0) > 0:
        raise ConfigError(
            "training.client_batching: the network draws random numbers in training (dropout "
            "or drop path), which batched clients cannot draw as each client alone would"
        )


def train_batched(job: RoundJob, clients: list[int]) -> list[ClientReply]:
    """Every client of ``clients`` through its round at once; replies in that order."""
    sim, work, worker = job.sim, job.work, job.worker
    method, cfg = sim.method, sim.method.train_cfg
    worker.load_state_dict(job.global_state)
    worker.train()
    contexts = [job.contexts[k] for k in clients]
    streams: list[Iterator[tuple[Tensor, Tensor]]] = [
        sim.data.batches(
            sim.train_idx[k], work.batch_size, ctx.generator, work.local_epochs, work.local_steps
        )
        for k, ctx in zip(clients, contexts, strict=True)
    ]
    n = len(clients)
    losses: list[list[Tensor]] = [[] for _ in clients]
    samples, flops = [0] * n, [0] * n
    memory = 0
    clock, aside = Stopwatch(sim.device), Stopwatch(sim.device)
    with clock:
        params = _stack({k: p.detach() for k, p in worker.named_parameters()}, n)
        buffers = _stack(dict(worker.named_buffers()), n)
        momentum: Stack = {}
        step_fn = vmap(grad_and_value(_loss(worker)), in_dims=(0, 0, 0, 0))
        for step, groups in enumerate(_lockstep(streams)):
            if step == 0:  # the loop measures every client's first step: the largest counts
                i, x, y = groups[max(groups)][0]
                with aside:  # a measurement, not the clients' work: off their clocks
                    memory = _client_memory(method, worker, work.lr, x, y, contexts[i])
            for size, batch in groups.items():
                members = [i for i, _, _ in batch]
                x = torch.stack([x.contiguous() for _, x, _ in batch])
                y = torch.stack([y for _, _, y in batch])
                loss = _sgd_step(step_fn, params, buffers, momentum, members, n, x, y, cfg, work)
                for j, i in enumerate(members):
                    losses[i].append(loss[j] * size)
                    samples[i] += size
                    flops[i] += method.step_flops(worker, size, contexts[i])
    share = 1.0 / n
    replies = []
    names = list(worker.state_dict())
    for i, (k, ctx) in enumerate(zip(clients, contexts, strict=True)):
        upload = {name: (params[name][i] if name in params else buffers[name][i]) for name in names}
        replies.append(
            ClientReply(
                client=k,
                upload=upload,
                weight=len(sim.train_idx[k]),
                losses=losses[i],
                samples=samples[i],
                flops=flops[i],
                memory_bytes=memory,
                seconds=(clock.wall - aside.wall) * share,
                cpu_seconds=(clock.cpu - aside.cpu) * share,
                store=ctx.store,
            )
        )
    return replies


def _lockstep(
    streams: list[Iterator[tuple[Tensor, Tensor]]],
) -> Iterator[dict[int, list[tuple[int, Tensor, Tensor]]]]:
    """Step by step, the clients (by position) that still have a batch, grouped by batch
    size: clients of unequal data end their epochs at different steps, and an epoch's
    last batch may be short; one group is one vmap."""
    active = list(range(len(streams)))
    while True:
        groups: dict[int, list[tuple[int, Tensor, Tensor]]] = {}
        for i in active:
            batch = next(streams[i], None)
            if batch is not None:
                groups.setdefault(len(batch[1]), []).append((i, *batch))
        if not groups:
            return
        active = [i for batch in groups.values() for i, _, _ in batch]
        yield groups


def _stack(state: dict[str, Tensor], n: int) -> Stack:
    return {k: v.unsqueeze(0).expand(n, *v.shape).contiguous() for k, v in state.items()}


def _loss(model: nn.Module) -> Callable[..., Tensor]:
    def loss(params: Stack, buffers: Stack, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(functional_call(model, (params, buffers), (x,)), y)

    return loss


def _sgd_step(step_fn, params, buffers, momentum, members, n, x, y, cfg, work) -> Tensor:
    """One step of ``members`` (rows of the stacks): torch.optim.SGD's arithmetic, op for
    op (weight decay added to the gradient, momentum buffer set on the first step), after
    ``training.grad_clip`` per client as ``nn.utils.clip_grad_norm_`` computes it."""
    rows = None if len(members) == n else torch.tensor(members)
    p = {k: _take(v, rows) for k, v in params.items()}
    b = {k: _take(v, rows) for k, v in buffers.items()}
    grads, loss = step_fn(p, b, x, y)
    if cfg.grad_clip:
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()], dim=1)
        coef = (cfg.grad_clip / (norms.norm(dim=1) + 1e-6)).clamp(max=1.0)
        grads = {k: g * coef.view(-1, *[1] * (g.dim() - 1)) for k, g in grads.items()}
    for name, g in grads.items():
        d = g.add(p[name], alpha=cfg.weight_decay) if cfg.weight_decay else g
        if cfg.momentum:
            if name not in momentum:  # every client's first step is the round's first
                # (a client first stepping in a later group of this step gets 0 * m + d = d)
                momentum[name] = torch.zeros_like(params[name])
                d = d.clone()
            else:
                d = _take(momentum[name], rows).mul(cfg.momentum).add_(d)
            _put(momentum, name, rows, d)
        _put(params, name, rows, p[name].add(d, alpha=-work.lr))
    if rows is not None:  # the group's BatchNorm statistics, updated in its copies
        for name, v in b.items():
            buffers[name][rows] = v
    return loss.detach()


def _take(stack: Tensor, rows: Tensor | None) -> Tensor:
    """The group's rows of a stack (the stack itself when the group is every client)."""
    return stack if rows is None else stack[rows]


def _put(stacks: Stack, name: str, rows: Tensor | None, value: Tensor) -> None:
    """Write a group's new values back: the whole entry, or its rows."""
    if rows is None:
        stacks[name] = value
    else:
        stacks[name][rows] = value


def _client_memory(method, worker: nn.Module, lr: float, x: Tensor, y: Tensor, ctx) -> int:
    """One client's training memory, measured as the loop measures it: its first step,
    here on a copy of the network (the copy's step is thrown away)."""
    net = copy.deepcopy(worker)
    opt = method.make_optimizer(net, lr, ctx)
    meter = TrainingMemory()
    state = torch.get_rng_state()
    with meter.step(net, opt):
        method.train_step(net, x, y, opt, ctx)
    torch.set_rng_state(state)
    return meter.peak_bytes
