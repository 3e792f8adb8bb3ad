"""What the engine asks of a federated method: the protocol, in two halves.

``ClientSide`` is what a client runs on its own data (as Flower's ClientApp), given the
network it downloaded into and its ``StepContext``; ``ServerSide`` is what the server
decides (as Flower's Strategy): the network it holds, each round's local work, what each
client receives, how replies combine, and its own work after a round. ``FederatedMethod``
is both, with the few values the engine reads. The engine (``federated.loop``,
``federated.clients``, ``deploy.flower_*``) types against these and imports nothing from
``dfnas.methods``; ``methods.base.FedMethod`` is the implementation every registered
method extends; its workflow declarations (options, stages, files, figures) are a
separate ``methods.spec.MethodSpec``, for the workflow, not for the engine.

A client's hooks run wherever the client does: in this process, in a forked worker, or on
a SuperNode. What they write to the method object stays there; a client keeps state
between rounds in ``ctx.store`` and the server learns only what ``upload`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import nn

if TYPE_CHECKING:
    from dfnas.federated.aggregation import StreamingMean
    from dfnas.federated.config import LocalWork, TrainConfig
    from dfnas.federated.context import ServerContext, StepContext


@runtime_checkable
class ClientSide(Protocol):
    """One client's local round, in the order a client calls them."""

    def make_optimizer(self, model: nn.Module, lr: float, ctx: StepContext) -> Any: ...

    def train_step(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: Any, ctx: StepContext
    ) -> torch.Tensor: ...

    def step_flops(self, model: nn.Module, batch_size: int, ctx: StepContext) -> int: ...

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None: ...

    def upload(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]: ...

    # whether the round above is FedAvg's, so clients may train as one computation
    def can_batch_clients(self) -> bool: ...


@runtime_checkable
class ServerSide(Protocol):
    """The server's decisions, in the order of a run and of a round."""

    def build_model(self) -> nn.Module: ...

    def local_work(self, round_: int) -> LocalWork: ...

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]: ...

    def aggregator(self) -> StreamingMean: ...

    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module: ...

    def evaluation_model(self, model: nn.Module, server: ServerContext) -> nn.Module: ...

    def final_model(self, model: nn.Module) -> tuple[nn.Module, dict]: ...

    def extra_metrics(self) -> dict[str, Any]: ...

    # the method's own server state, for checkpoints (``server_state`` names it)
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FederatedMethod(ClientSide, ServerSide, Protocol):
    """A whole method as the engine sees it: both halves, its training settings, the
    input shape it was built for (``setup.in_shape``, for the costs) and the share of each
    client's data it holds out for local validation."""

    train_cfg: TrainConfig
    setup: Any
    validation_fraction: float
