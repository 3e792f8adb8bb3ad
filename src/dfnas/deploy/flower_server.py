"""The Flower ServerApp: the in-process loop, with its clients on a Flower federation.

The server runs ``run.run_method``, the very code a pipeline job runs: sampling, the
method's download, aggregation, the method's server-side work, evaluation, checkpoints and
the result contract. Only where clients train changes: ``FlowerClients`` is the loop's
client runner (``federated.clients.ClientRunner``) that sends each sampled client its
download and context as a Flower message, to the SuperNode that holds that client's data,
and hands the replies back in sampled order. With the same partition, seed, threads and
budget the run therefore ends where the in-process run ends (tests/test_flower.py checks
it bit for bit), and it writes the same files, plus ``flower.json``: the bytes Flower sent
each round beside the benchmark's own count.

The server keeps the whole dataset for what the benchmark measures on the server side: the
test split, and the clients' data for BN re-estimation and personalized evaluation, which a
real deployment would ask of the clients (docs/flower.md).

Run config (``flwr run --run-config FILE``; ``dfnas flower-prepare`` writes one):
``spec`` (the run's spec as JSON), ``data`` and ``partition`` (the server's copies),
``seed``, ``out``, ``name``, ``threads`` (0: torch's default), ``node_wait`` (seconds to
wait for every client's SuperNode to connect) and ``round_timeout`` (seconds a round waits
for its replies before the run stops, naming the first client missing).

A node lost in the middle of a run is a fault, not a dropout: the config's dropouts are
drawn from the seed, so that a run is the same run wherever it trains, and a real loss
cannot be one of them without making the result depend on timing. The round waits
``round_timeout``, the run stops with one line naming the round and the client, and the
checkpoints of the rounds before stay; the same ``flwr run`` resumes after the last of
them once the node is back, and ends where an uninterrupted run ends (tests/test_flower.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from flwr.app import Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid, ServerApp

from dfnas.cost import tensor_bytes
from dfnas.deploy import flower_messages as fm
from dfnas.errors import DfnasError
from dfnas.federated.clients import ClientReply, RoundJob
from dfnas.federated.settings import RunSettings
from dfnas.io import write_json
from dfnas.partition.stage import read_partition
from dfnas.run import run_method

app = ServerApp()


class DeploymentError(DfnasError):
    """A client could not be reached or failed: one line with the round and the node."""


def discover(grid: Grid, num_clients: int, wait_s: float, log: Callable = print) -> dict[int, int]:
    """Client number -> node id: waits for ``num_clients`` SuperNodes, then asks each which
    client's data it holds (its ``partition-id``); every client must be held exactly once,
    by a node that answers. A node that does not (one lost and not yet forgotten by the
    SuperLink, whose replacement holds its client) is left out; the question is asked
    again until every client is held or ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        nodes = list(grid.get_node_ids())
        # a ClientApp process must start to answer (seconds on a busy machine)
        owner = _holders(grid, nodes, min(30.0, max(1.0, deadline - time.monotonic())), log)
        absent = sorted(set(range(num_clients)) - set(owner))
        if not absent:
            break
        if time.monotonic() > deadline:
            raise DeploymentError(
                f"no SuperNode holds client {absent[0]} (partition-id) after {wait_s:.0f} s "
                f"({len(nodes)} connected)"
            )
        time.sleep(1.0)
    log(f"{num_clients} clients on {len(owner)} SuperNodes")
    return owner


def _holders(grid: Grid, nodes: list[int], timeout: float, log: Callable) -> dict[int, int]:
    queries = [Message(RecordDict(), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
    owner: dict[int, int] = {}
    for reply in grid.send_and_receive(queries, timeout=timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            log(f"node {node} did not say its client ({reply.error.reason}): left out")
            continue
        k = int(reply.content.config_records["node"]["client"])
        if k in owner:
            raise DeploymentError(f"client {k} is held by two nodes ({owner[k]}, {node})")
        owner[k] = node
    return owner


class FlowerClients:
    """The loop's client runner on a Flower grid: one train message per replying client
    per round, sent together, replies handed on in sampled order."""

    def __init__(self, grid: Grid, nodes: dict[int, int], timeout: float | None = None) -> None:
        self.grid, self.nodes, self.timeout = grid, nodes, timeout
        self.rounds: list[dict] = []  # per round: bytes Flower sent, each way

    def __call__(
        self, job: RoundJob, clients: list[int], receive: Callable[[ClientReply], None]
    ) -> None:
        messages = [
            Message(fm.train_content(job, k), dst_node_id=self.nodes[k], message_type=fm.TRAIN)
            for k in clients
        ]
        sent = [fm.message_bytes(m) for m in messages]
        client_of = {node: k for k, node in self.nodes.items()}
        replies: dict[int, Message] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            k = client_of[reply.metadata.src_node_id]
            if reply.has_error():
                raise DeploymentError(
                    f"round {job.round + 1}: client {k} failed: {reply.error.reason}"
                )
            replies[k] = reply
        missing = [k for k in clients if k not in replies]
        if missing:
            raise DeploymentError(f"round {job.round + 1}: client {missing[0]} did not reply")
        decoded = [fm.read_reply(replies[k].content, k) for k in clients]
        self.rounds.append(
            {
                "round": job.round,
                "clients": len(clients),
                "flower_bytes_down": sum(sent),
                "flower_bytes_up": sum(fm.message_bytes(replies[k]) for k in clients),
                # the same messages' tensors as the benchmark counts them (cost.tensor_bytes)
                "tensor_bytes_down": sum(tensor_bytes(job.sent[k]) for k in clients),
                "tensor_bytes_up": sum(tensor_bytes(r.upload) for r in decoded),
            }
        )
        for reply in decoded:
            receive(reply)


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    part = read_partition(str(rc["partition"]))
    nodes = discover(grid, part.num_clients, float(rc.get("node_wait", 120)))
    runner = FlowerClients(grid, nodes, float(rc.get("round_timeout", 3600)))
    try:
        metrics = run_method(
            json.loads(str(rc["spec"])),
            data=str(rc["data"]),
            partition=str(rc["partition"]),
            seed=int(rc["seed"]),
            out_dir=str(rc["out"]),
            name=str(rc.get("name") or "") or None,
            settings=RunSettings(threads=int(rc.get("threads", 0)) or None, clients=runner),
        )
    except DeploymentError as exc:
        # a lost node is a fault, not one of the config's dropouts (those are drawn from
        # the seed): the run stops, keeping the checkpoints of the rounds before. The line
        # says what to do; re-raised, Flower marks the run failed with the message as its
        # details (``flwr ls``) and logs its own traceback after the line
        print(
            f"flower run stopped: {exc}; the rounds before are checkpointed in "
            f"{rc['out']}: the same flwr run resumes them once every node is back",
            flush=True,
        )
        raise
    write_json(Path(str(rc["out"])) / "flower.json", flower_bytes(runner.rounds))
    print(f"flower run done: test accuracy {metrics['accuracy']:.4f}")


def flower_bytes(rounds: list[dict]) -> dict:
    """Flower's bytes per round and in all, beside the tensor bytes of the same messages
    (what the benchmark's ``bytes_down``/``bytes_up`` count: a round's totals there also
    hold the downloads of clients that then dropped, and server-side BN work)."""
    keys = ("flower_bytes_down", "flower_bytes_up", "tensor_bytes_down", "tensor_bytes_up")
    total = {k: sum(r[k] for r in rounds) for k in keys}
    overhead = (total["flower_bytes_down"] + total["flower_bytes_up"]) / max(
        1, total["tensor_bytes_down"] + total["tensor_bytes_up"]
    )
    return {"rounds": rounds, "total": total, "flower_over_tensor_bytes": overhead}
