"""One round's client work, and where it runs.

``RoundJob`` holds everything the clients of a round need, fixed before the first of them
trains: the server's model and state, the method, the data and the round's local work.
``job.train(ctx)`` is one client's local round; it returns a ``ClientReply``, all the
server learns of that client. Clients depend on nothing but the job and their own seed,
and the loop hands the replies to the server in sampled order, so where they ran cannot
change the result: one after another in this process (``job.train`` per client), or
shared among forked worker processes (``run_forked``), each with its share of the CPU
threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import wait
from typing import Any

import torch
from torch import nn

from dfnas.cost import Stopwatch, peak_memory_bytes
from dfnas.cost.memory import TrainingMemory
from dfnas.errors import DfnasError
from dfnas.federated.config import LocalWork
from dfnas.federated.context import StepContext
from dfnas.federated.data import DeviceData
from dfnas.federated.precision import autocast_forward
from dfnas.federated.sampling import client_seed
from dfnas.federated.simulation import Simulation


@dataclass
class ClientReply:
    """What the server learns of one client's round (and what it is charged)."""

    client: int
    upload: dict[str, torch.Tensor]
    weight: int  # the client's train size: its weight in the server's mean
    # loss x batch size of each step, in order: the round's loss sums them in one order
    losses: list[torch.Tensor]
    samples: int
    flops: int
    memory_bytes: int  # the client's training memory (cost.memory), first step measured
    seconds: float  # wall and CPU seconds of this client alone, wherever it ran
    cpu_seconds: float
    store: dict  # what the client keeps for later rounds (ctx.store after its round)
    gpu_peak_before: int = 0  # CUDA: the allocator's peak before this client reset it
    gpu_peak: int = 0  # CUDA: the allocator's peak while this client trained


@dataclass
class RoundJob:
    sim: Simulation
    model: nn.Module  # the server's network (what clients download from)
    worker: nn.Module  # the network a client trains in (the server's state loaded)
    work: LocalWork
    global_state: dict[str, torch.Tensor]
    round: int
    client_store: dict[int, dict]
    # each sampled client's context after its download, computed once by the parent; a
    # forked worker inherits them (its copy of the generator continues where the download,
    # which may have drawn the client's plan, left it)
    contexts: dict[int, StepContext] = field(default_factory=dict)
    # what each sampled client was sent (references into the server's state, no copies):
    # a runner that reaches clients over a network sends exactly this
    sent: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    def context(self, k: int) -> StepContext:
        work = self.work
        return StepContext(
            round=self.round,
            client=k,
            generator=torch.Generator().manual_seed(client_seed(self.sim.seed, self.round, k)),
            store=self.client_store.setdefault(k, {}),
            global_state=self.global_state,
            steps=DeviceData.count_batches(
                len(self.sim.train_idx[k]), work.batch_size, work.local_epochs, work.local_steps
            ),
        )

    def download(self, k: int) -> dict[str, torch.Tensor]:
        """What client k receives: the same for every client unless the method sends each
        only what it will train (planned from the client's generator, which its steps then
        continue). Its context is kept for its training."""
        ctx = self.contexts[k] = self.context(k)
        self.sent[k] = self.sim.method.download(self.model, ctx)
        return self.sent[k]

    def client(self, k: int) -> ClientReply:
        """Client k's round from its context (what a worker process runs)."""
        return self.train(self.contexts[k])

    def train(self, ctx: StepContext) -> ClientReply:
        sim, work, worker = self.sim, self.work, self.worker
        method, device = sim.method, sim.device
        k = ctx.client
        gpu_before = 0
        clock = Stopwatch(device)
        losses, samples, flops = [], 0, 0
        with clock, autocast_forward(worker, method.train_cfg.precision):
            worker.load_state_dict(self.global_state)
            worker.train()
            torch.manual_seed(client_seed(sim.seed, self.round, k))
            if sim.val_idx is not None:
                ctx.val = sim.data.batches(
                    sim.val_idx[k], work.batch_size, ctx.generator, epochs=0, steps=10**9
                )
            opt = method.make_optimizer(worker, work.lr, ctx)
            if device.type == "cuda":
                gpu_before = peak_memory_bytes(device)
                torch.cuda.reset_peak_memory_stats(device)
            meter = TrainingMemory()
            batches = sim.data.batches(
                sim.train_idx[k],
                work.batch_size,
                ctx.generator,
                work.local_epochs,
                work.local_steps,
            )
            for step, (x, y) in enumerate(batches):
                # a client's first step of the round is measured (a step's memory does not
                # depend on its batch; DFNAS's path differs from client to client)
                with meter.step(worker, opt) if step == 0 else contextlib.nullcontext():
                    loss = method.train_step(worker, x, y, opt, ctx)
                flops += method.step_flops(worker, len(y), ctx)
                losses.append(loss * len(y))
                samples += len(y)
            method.end_client(worker, opt, ctx)
            up = method.upload(worker, ctx)
        return ClientReply(
            client=k,
            upload=up,
            weight=len(sim.train_idx[k]),
            losses=losses,
            samples=samples,
            flops=flops,
            memory_bytes=meter.peak_bytes,
            seconds=clock.wall,
            cpu_seconds=clock.cpu,
            store=ctx.store,
            gpu_peak_before=gpu_before,
            gpu_peak=peak_memory_bytes(device) if device.type == "cuda" else 0,
        )


# Where a round's clients train: given the round's job, the clients that reply (in sampled
# order) and the server's ``receive``, a runner trains each client and hands its reply to
# ``receive`` in that order. ``in_process`` and ``forked`` run here; a deployment runner
# (``dfnas.deploy.flower``) sends each client its ``job.sent[k]`` and context over the
# network instead. The result is the runner's to keep identical, not the loop's.
ClientRunner = Callable[[RoundJob, list[int], Callable[[ClientReply], None]], None]


def in_process(job: RoundJob, clients: list[int], receive: Callable[[ClientReply], None]) -> None:
    """Every client one after another in this process, on the job's worker network."""
    for k in clients:
        receive(job.client(k))


def local_runner(workers: int) -> ClientRunner:
    """In this process, or shared among ``workers`` forked processes, each with its share
    of this process's threads (one client alone trains here)."""
    if workers <= 1:
        return in_process

    def forked(job: RoundJob, clients: list[int], receive: Callable[[ClientReply], None]) -> None:
        if len(clients) <= 1:
            return in_process(job, clients, receive)
        threads = max(1, torch.get_num_threads() // workers)
        return run_forked(job, clients, workers, threads, receive)

    return forked


class ClientWorkerError(DfnasError):
    """A worker process died or failed: one line with the round and what happened (a
    failure's whole traceback goes to stderr, the job's log, first)."""


def run_forked(
    job: RoundJob,
    clients: list[int],
    workers: int,
    threads: int,
    receive: Callable[[ClientReply], None],
) -> None:
    """Train ``clients`` in ``workers`` forked processes of ``threads`` threads each, and
    hand each reply to ``receive`` in the order of ``clients`` (early ones wait).

    Fork gives every worker this process's state as it is now (the job, the method, the
    data), so nothing is sent to a worker; each takes the next untrained client from a
    shared counter and sends its reply back, pickled (tensors copied, no shared-memory
    handles to leak). Forking needs no re-import, which keeps a round's overhead to
    milliseconds; CUDA cannot be forked, so this is CPU only."""
    mp = get_context("fork")
    counter = mp.Value("i", 0)
    conns, procs = [], []
    for _ in range(min(workers, len(clients))):
        recv, send = mp.Pipe(duplex=False)
        proc = mp.Process(
            target=_worker, args=(job, clients, counter, send, threads, os.getpid()), daemon=True
        )
        proc.start()
        send.close()
        conns.append(recv)
        procs.append(proc)
    pending: dict[int, ClientReply] = {}
    done = 0
    owner = dict(zip(conns, procs, strict=True))
    try:
        while conns:
            for conn in wait(conns):
                try:
                    msg = pickle.loads(conn.recv_bytes())
                except EOFError:
                    proc = owner[conn]
                    proc.join(5)
                    raise ClientWorkerError(
                        f"a client worker process died (exit code {proc.exitcode}) in round "
                        f"{job.round + 1}; out of memory? try fewer client_workers"
                    ) from None
                if msg is None:
                    conns.remove(conn)
                elif isinstance(msg, str):
                    print(msg, file=sys.stderr, end="")
                    last = msg.strip().splitlines()[-1]
                    raise ClientWorkerError(
                        f"a client worker failed in round {job.round + 1}: {last} "
                        "(traceback above in the log)"
                    )
                else:
                    pending[msg.client] = msg
                    while done < len(clients) and clients[done] in pending:
                        receive(pending.pop(clients[done]))
                        done += 1
    finally:
        for proc in procs:
            if proc.is_alive() and conns:
                proc.terminate()
            proc.join()


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when its run's process dies, however it dies: a
    run killed with -9 (or by a scheduler) otherwise leaves its workers as orphans that
    never exit (a sibling holds each reply pipe open, so a send blocks instead of
    failing). Linux's PR_SET_PDEATHSIG; elsewhere a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the run died before the request took effect
        os._exit(1)


def _worker(
    job: RoundJob, clients: list[int], counter: Any, conn: Any, threads: int, parent: int
) -> None:
    _die_with(parent)
    torch.set_num_threads(threads)
    try:
        while True:
            with counter.get_lock():
                i = counter.value
                counter.value += 1
            if i >= len(clients):
                break
            conn.send_bytes(pickle.dumps(job.client(clients[i]), pickle.HIGHEST_PROTOCOL))
        conn.send_bytes(pickle.dumps(None))
    except BaseException:  # the parent raises it, with this traceback
        conn.send_bytes(pickle.dumps(traceback.format_exc()))
    finally:
        conn.close()
