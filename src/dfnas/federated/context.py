"""What the federated loop hands a method: the context of one client's local step
(``StepContext``) and the server's handle on a round's clients (``ServerContext``). The
engine's side of the protocol, named for what it holds; the method's side is
``federated.protocol``, the run's fixed setting ``federated.simulation``, the local work a
round asks of each client ``federated.config.LocalWork``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

import torch
from torch import nn

from dfnas.cost import forward_flops, tensor_bytes
from dfnas.federated.bn import bn_moments, set_bn_statistics
from dfnas.federated.data import DeviceData


@dataclass
class StepContext:
    """What a local step may need beyond its batch."""

    round: int
    client: int
    generator: torch.Generator  # seeded per (seed, round, client): sampling must use it
    # what this client keeps between rounds (checkpointed); empty unless a method uses it
    store: dict = field(default_factory=dict)
    # endless batches from the client's local validation split, when a method asks for one
    val: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None
    # the server's state this client started the round from (FedProx's anchor); shared by
    # every client of the round, so read it, never write it
    global_state: dict[str, torch.Tensor] = field(default_factory=dict)
    # how many local steps this client takes this round (known before it downloads)
    steps: int = 0
    # what a method works out for this client's round at download and its steps read back
    # (DFNAS with path-only communication: the planned paths, the ops received); computed
    # once, in the process that counts the bytes, and discarded after the round
    plan: dict = field(default_factory=dict)


@dataclass
class ServerContext:
    """The server's handle on this round's clients, for work beyond aggregation."""

    data: DeviceData
    train_idx: list[torch.Tensor]
    clients: list[int]
    row: dict  # this round's history row: costs added here are accounted
    batch_size: int

    @torch.no_grad()
    def recalibrate_bn(
        self,
        model: nn.Module,
        in_shape: tuple[int, int, int],
        max_batches: int | None = None,
        account: bool = True,
    ) -> None:
        """Reset BN statistics to those of this round's clients' train data (at most
        ``max_batches`` batches each), pooled exactly; ``account`` adds the work to the
        round's costs."""
        if not self.clients:
            return
        per_sample = forward_flops(model, in_shape) if account else 0
        local = copy.deepcopy(model)
        gen = torch.Generator().manual_seed(0)
        total: dict[str, torch.Tensor] = {}
        for k in self.clients:
            batches = self.data.batches(self.train_idx[k], self.batch_size, gen, epochs=1)
            taken = [x for x, _ in islice(batches, max_batches)]
            moments = bn_moments(local, taken)
            for key, value in moments.items():
                total[key] = total[key] + value if key in total else value
            if account:
                self.row["train_flops"] += per_sample * sum(len(x) for x in taken)
                self.row["bytes_up"] += tensor_bytes(moments)
        if account:  # clients need the new network's weights before they can run it
            self.row["bytes_down"] += tensor_bytes(model.state_dict()) * len(self.clients)
        set_bn_statistics(model, total)
