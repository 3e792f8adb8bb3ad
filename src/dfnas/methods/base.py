"""The method implementation: what a federated method may change, and nothing else.

The loop in ``dfnas.federated.loop`` owns the rounds, sampling, timing and accounting; a
method only says what model the server holds, how a client takes one step, what travels,
and how replies are combined. FedAvg is this base class unchanged. What a method asks of
the workflow (options, stages, files, figures) is declared apart, where it registers
(``methods.spec.MethodSpec``), and read without building it.

The hooks a method may override, in the order of a round (13; the loop makes the round's
``aggregator()`` once the clients have downloaded, and adds each reply as it arrives)::

    build_model()                      the server's current network
    local_work(round)                  learning rate, batch, local epochs / steps, and the
                                       round's stage label (search / train)
    download(model, ctx)               what client ``ctx.client`` receives (the state)
    make_optimizer(model, lr, ctx)     a client's optimizer(s) for one round
    train_step(model, x, y, opt, ctx)  one local step; returns the loss (ctx.global_state:
                                       the server's state the client started from);
                                       ``self.clip(model)`` applies ``training.grad_clip``
    step_flops(model, batch_size, ctx) training FLOPs of the step just taken
    end_client(model, opt, ctx)        keep client state between rounds, in ctx.store
    upload(model, ctx)                 what a client sends back (the state)
    aggregator()                       how replies are combined (weighted mean)
    end_round(model, round, server)    server-side work after aggregation; may return
                                       another network (DFNAS's child)
    evaluation_model(model, server)    the network the round's test accuracy is of
    final_model(model)                 the deployable network and its model.json spec
    extra_metrics()                    what the run adds to metrics.json

and two values: ``validation_fraction`` (share of each client's data held out as its
local validation split, FedNAS) and ``server_state`` (the attributes a checkpoint keeps,
so a killed run resumes exactly). ``__init__(setup, options)`` refuses bad options with
``ConfigError``; it runs when the workflow starts, once per dataset's input shape.

From ``make_optimizer`` to ``upload`` the hooks are the client's: with ``client_workers``
they run in a forked worker process, or on a Flower SuperNode, so what they write to
``self`` stays there. A client keeps state between rounds in ``ctx.store``; the server
learns only what ``upload`` sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.cost import train_flops
from dfnas.federated.aggregation import StreamingMean
from dfnas.federated.config import LocalWork, TrainConfig
from dfnas.federated.context import ServerContext, StepContext
from dfnas.models import build_model, model_spec
from dfnas.search import darts_supernet  # noqa: F401  (search networks by name, too)


def supervised_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: Any, clip: Any
) -> torch.Tensor:
    """One SGD step of cross-entropy on a batch, gradients clipped by ``clip(model)``:
    FedAvg's step, and every method's step on a plain network (DFNAS's child)."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    clip(model)
    optimizer.step()
    return loss.detach()


@dataclass
class MethodSetup:
    """Everything a method is built from."""

    model: str
    model_args: dict[str, Any]
    in_shape: tuple[int, int, int]
    num_classes: int
    train: TrainConfig
    options: dict[str, Any] = field(default_factory=dict)
    # files made for this run by the workflow and passed by path, under the names the
    # method's declaration reads (``MethodSpec.reads``; DFNAS: ``latency_table``)
    inputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        spec: dict[str, Any],
        default_model: str,
        in_shape: tuple[int, int, int],
        num_classes: int,
        inputs: Mapping[str, str] | None = None,
        received: Mapping[str, Any] | None = None,
    ) -> MethodSetup:
        """A stage's setup from its spec (``methods.stages.stage_spec``), the one place it is
        built: the config check at workflow start builds exactly what the job trains.
        ``received``: the model arguments the stage before handed over (DFNAS's child)."""
        return cls(
            model=spec.get("model", default_model),
            model_args=dict(spec.get("model_args", {})) | dict(received or {}),
            in_shape=in_shape,
            num_classes=num_classes,
            train=TrainConfig.from_dict(spec.get("training", {})),
            options=dict(spec.get("options", {})),
            inputs=dict(inputs or {}),
        )


class FedMethod:
    """FedAvg's behaviour; subclasses override hooks (listed above)."""

    # attributes the server keeps between rounds (DFNAS: alpha history, fixed layers, the
    # child's path); checkpointed with the model
    server_state: ClassVar[tuple[str, ...]] = ()
    # share of each client's train split held out as its local validation split; a step
    # then draws validation batches from ``ctx.val``
    validation_fraction: float = 0.0

    def __init__(self, setup: MethodSetup, options: Any) -> None:
        self.setup = setup
        self.train_cfg = setup.train
        self.options = options
        self._flops_per_sample: int | None = None

    # -- the server's network -------------------------------------------------------
    def build_model(self) -> nn.Module:
        s = self.setup
        return build_model(s.model, s.in_shape, s.num_classes, **s.model_args)

    def local_work(self, round_: int) -> LocalWork:
        """What round ``round_`` asks of each client; a method with phases (DFNAS's search
        and child) gives each phase its own, and labels the round's stage."""
        return self.train_cfg.local_work(round_)

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        """What client ``ctx.client`` receives of the server's model, before it trains
        ``ctx.steps`` steps: the whole state unless the method plans per client (the
        bytes are counted from what this returns). Runs in the server's process."""
        return model.state_dict()

    # -- a client's round -----------------------------------------------------------
    def make_optimizer(self, model: nn.Module, lr: float, ctx: StepContext) -> Any:
        """The client's optimizer(s) for one round; whatever is returned is handed to
        ``train_step``. ``ctx.store`` holds what this client kept from earlier rounds."""
        cfg = self.train_cfg
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )

    def train_step(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        optimizer: Any,
        ctx: StepContext,
    ) -> torch.Tensor:
        return supervised_step(model, x, y, optimizer, self.clip)

    def step_flops(self, model: nn.Module, batch_size: int, ctx: StepContext) -> int:
        """Forward + backward FLOPs of the step just taken (``ctx``: the client's, for a
        method whose steps differ); a fixed network costs the same per sample every step,
        so it is counted once."""
        if self._flops_per_sample is None:
            self._flops_per_sample = train_flops(model, self.setup.in_shape)
        return self._flops_per_sample * batch_size

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None:
        """After a client's local work: keep state in ``ctx.store`` if the method wants."""

    def upload(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        """What the client sends back after its local work; an entry no client sends is
        left unchanged by the server's mean."""
        return model.state_dict()

    # -- the server's round -----------------------------------------------------------
    def aggregator(self) -> StreamingMean:
        return StreamingMean()

    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module:
        """Called after aggregation; may return a different network (DFNAS's child).
        ``server`` offers federated work the server can ask of clients (BN statistics)."""
        return model

    def evaluation_model(self, model: nn.Module, server: ServerContext) -> nn.Module:
        """The network whose test accuracy a round reports (DFNAS: during the search, the
        argmax path with its own BN statistics). Work done here is measurement, not
        training, and is not counted in the costs."""
        return model

    def final_model(self, model: nn.Module) -> tuple[nn.Module, dict]:
        return model, self.model_spec()

    def extra_metrics(self) -> dict[str, Any]:
        return {}

    def can_batch_clients(self) -> bool:
        """Whether a round's clients may train as one computation (``federated.batched``):
        only if their round is FedAvg's unchanged, which the batched path reproduces."""
        own = ("download", "make_optimizer", "train_step", "end_client", "upload")
        plain = all(getattr(type(self), h) is getattr(FedMethod, h) for h in own)
        return plain and self.validation_fraction == 0

    # -- helpers, not hooks --------------------------------------------------------------
    def clip(self, model: nn.Module) -> None:
        """``training.grad_clip``, which every method's step honours."""
        if self.train_cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), self.train_cfg.grad_clip)

    def model_spec(self) -> dict:
        """The setup's network as ``model.json`` records it."""
        s = self.setup
        return model_spec(s.model, s.in_shape, s.num_classes, **s.model_args)

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.server_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.server_state:
            setattr(self, name, state[name])
