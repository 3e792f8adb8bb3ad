"""The run's fixed setting: what stays the same for every round, built once where a run
starts (``federated.loop._simulation``; ``deploy.flower_client`` for a Flower node) and
handed down instead of a dozen positional values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from dfnas.federated.data import DeviceData

if TYPE_CHECKING:  # the engine's contract with methods, which build on it (never the reverse)
    from dfnas.federated.protocol import FederatedMethod
    from dfnas.partition import ClientPartition


@dataclass(frozen=True)
class Simulation:
    """What stays fixed for a whole run, built once before the first round."""

    method: FederatedMethod
    data: DeviceData
    partition: ClientPartition
    train_idx: list[torch.Tensor]  # each client's train split, on the device
    val_idx: list[torch.Tensor] | None  # and its local validation split, if asked for
    per_round: int  # clients sampled per round
    seed: int
    device: torch.device
    client_workers: int
    log: Callable[[str], Any]
    # where a round's clients train (``federated.clients.ClientRunner``): in this process,
    # in forked workers, or on a deployment's nodes
    clients: Callable[..., None]
