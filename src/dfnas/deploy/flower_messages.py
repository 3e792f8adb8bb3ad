"""What travels between the Flower ServerApp and a ClientApp, in both directions.

A train message carries what the in-process loop hands a client (``RoundJob``): the
download (``job.sent[k]``, the tensors the benchmark's ``bytes_down`` counts) as an
``ArrayRecord``, and in a ``ConfigRecord`` the client's context: round, steps, its
generator as the download left it, the method's plan for it (DFNAS's paths with path-only
communication), its store from earlier rounds, and the method's server state (DFNAS's
fixed layers; the client's hooks read it). The reply carries the upload (the tensors
``bytes_up`` counts) and, beside it, the client's loss, sample count and measured costs.
What goes beside the tensors is small and is measured with them (``message_bytes``).

Both sides serialize those extras with ``torch.save`` and read them with
``torch.load(weights_only=True)``: tensors, numbers, strings and containers only, so a
message cannot make its reader run code.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from dfnas.federated.clients import ClientReply, RoundJob
from dfnas.federated.context import StepContext

TRAIN = "train"
MODEL, TASK, REPLY = "model", "task", "reply"


def pack(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def unpack(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=True)


def train_content(job: RoundJob, k: int) -> RecordDict:
    """Client k's train message: its download and its context."""
    ctx = job.contexts[k]
    task = {
        "generator": ctx.generator.get_state(),
        "plan": ctx.plan,
        "store": ctx.store,
        "method": job.sim.method.state_dict(),
    }
    return RecordDict(
        {
            MODEL: ArrayRecord(dict(job.sent[k])),
            TASK: ConfigRecord(
                {"round": job.round, "client": k, "steps": ctx.steps, "state": pack(task)}
            ),
        }
    )


def read_train(content: RecordDict) -> tuple[dict[str, torch.Tensor], StepContext, dict]:
    """The download, the client's context (without ``global_state``: the client sets it
    once its network holds the download) and the method's server state."""
    task = content.config_records[TASK]
    extra = unpack(task["state"])
    generator = torch.Generator()
    generator.set_state(extra["generator"])
    ctx = StepContext(
        round=int(task["round"]),
        client=int(task["client"]),
        generator=generator,
        store=extra["store"],
        steps=int(task["steps"]),
        plan=extra["plan"],
    )
    state = {k: v.clone() for k, v in content.array_records[MODEL].to_torch_state_dict().items()}
    return state, ctx, extra["method"]


def reply_content(reply: ClientReply) -> RecordDict:
    extra = {k: v for k, v in vars(reply).items() if k not in ("upload", "client")}
    return RecordDict(
        {
            MODEL: ArrayRecord(dict(reply.upload)),
            REPLY: ConfigRecord({"reply": pack(extra)}),
        }
    )


def read_reply(content: RecordDict, client: int) -> ClientReply:
    upload = content.array_records[MODEL].to_torch_state_dict()
    extra = unpack(content.config_records[REPLY]["reply"])
    return ClientReply(client=client, upload={k: v.clone() for k, v in upload.items()}, **extra)


def message_bytes(message: Message) -> int:
    """The bytes Flower sends for a message: every object of its tree (the message, its
    records, each array's chunks) serialized as Flower pushes it."""
    return sum(len(obj.deflate()) for obj in get_all_nested_objects(message).values())
