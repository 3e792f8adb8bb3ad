"""The method interface: what a federated method may change, and nothing else.

The loop in ``dfnas.federated.loop`` owns the rounds, sampling, timing and accounting; a
method only says what model the server holds, how a client takes one step, what travels,
and how replies are combined. FedAvg is this base class unchanged; DFNAS overrides the
step and the end of a round. What a method asks of the workflow (its stages, hand-offs,
extra files and figures) it declares in ``stages`` and ``figures`` (``methods.stages``).
Hooks, in the order the loop calls them::

    check()                            refuse bad options at start (ConfigError)
    build_model() / model_spec()       the server's current network, and its model.json
    validation_fraction()              share of each client's data held out (FedNAS)
    local_work(round)                  learning rate, batch size and local epochs / steps
    begin_round(model, round)          per-round state of a network (DARTS's drop-path)
    payload(model)                     what travels by default (every state_dict entry)
    download(model, ctx)               what a client receives (``payload``)
    make_optimizer(model, lr, ctx)     a client's optimizer(s) for one round
    train_step(model, x, y, opt, ctx)  one local step; returns the loss (ctx.global_state:
                                       the server's state the client started from);
                                       ``clip(model)`` applies ``training.grad_clip``
    step_flops(model, batch_size)      training FLOPs of the step just taken
    end_client(model, opt, ctx)        keep client state between rounds, if any
    upload(net, ctx)                   what a client sends back (``payload``)
    aggregator()                       how replies are combined (weighted mean)
    end_round(model, round, server)    server-side work after aggregation
    evaluation_model(model, server)    the network the round's test accuracy is of
    stage_of(round)                    the history's stage label of a round
    state_dict() / load_state_dict()   the ``server_state`` attributes a checkpoint keeps
    final_model(model)                 the deployable network and its model.json spec
    extra_metrics() / extra_outputs()  what the run adds to metrics.json, and its own files

Declarations, read by the workflow rather than the loop: ``Options`` (typed options),
``default_model``, ``stages``, ``figures``, ``searches`` (a NAS method, exported by
default), ``device_options`` (the options a device budget becomes) and ``input_files``
(the files, such as a latency table, that the workflow makes and passes by path).

From ``make_optimizer`` to ``upload`` the hooks are the client's: with ``client_workers``
they run in a forked worker process, so what they write to ``self`` stays there. A client
keeps state between rounds in ``ctx.store``; the server learns only what ``upload`` sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.cost import train_flops
from dfnas.errors import ConfigError
from dfnas.federated.aggregation import StreamingMean
from dfnas.federated.config import TrainConfig
from dfnas.federated.context import LocalWork, ServerContext, StepContext
from dfnas.methods.options import parse_options
from dfnas.methods.stages import ONE_STAGE, RunFigure, Stage
from dfnas.models import build_model, model_spec


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
    # method declares in ``input_files`` (DFNAS: ``latency_table``)
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NoOptions:
    pass


class FedMethod:
    """FedAvg's behaviour; subclasses override hooks and declare an ``Options`` dataclass."""

    Options: ClassVar[type] = NoOptions
    default_model: ClassVar[str] = "cnn"
    # the workflow's rules for this method: one per stage, one per figure
    stages: ClassVar[tuple[Stage, ...]] = ONE_STAGE
    figures: ClassVar[tuple[RunFigure, ...]] = ()
    # a NAS method: its final network is an architecture found, exported by default
    # (config key ``export: nas``) and checked in another runtime
    searches: ClassVar[bool] = False

    def __init__(self, setup: MethodSetup) -> None:
        self.setup = setup
        self.train_cfg = setup.train
        self.options = parse_options(self.Options, setup.options)
        self._flops_per_sample: int | None = None

    @classmethod
    def device_options(cls, device: str, budget: dict[str, float]) -> dict:
        """The options that make a run search for one device type (a run that lists
        ``devices`` becomes one run per type): ``budget`` is the config's entry for it
        (``macs``, ``latency_ms``). A method that does not search per device says so."""
        raise ConfigError("this method does not search per device type")

    @classmethod
    def input_files(cls, options: dict[str, Any]) -> tuple[str, ...]:
        """The files a run with these options reads beyond its data: the workflow makes
        each (``latency_table``: the ``latency_table`` rule, on the machine that trains)
        and passes its path (``MethodSetup.inputs``; by hand, ``dfnas run
        --latency-table``), so no option holds a path."""
        return ()

    # -- the server's network -------------------------------------------------------
    def check(self) -> None:
        """What a run would otherwise find wrong only once it starts; the workflow calls
        it when it starts, once per dataset's input shape. Raise ``ConfigError``."""
        self.build_model()

    def build_model(self) -> nn.Module:
        s = self.setup
        return build_model(s.model, s.in_shape, s.num_classes, **s.model_args)

    def model_spec(self) -> dict:
        s = self.setup
        return model_spec(s.model, s.in_shape, s.num_classes, **s.model_args)

    # -- a client's round -----------------------------------------------------------
    def local_work(self, round_: int) -> LocalWork:
        """What round ``round_`` asks of each client; a method with phases (DFNAS's search
        and child) gives each phase its own."""
        return self.train_cfg.local_work(round_)

    def begin_round(self, model: nn.Module, round_: int) -> None:
        """Before a round, on the server's network and the clients' worker: a network
        whose behaviour follows training progress (DARTS's drop-path grows) is told it."""
        if hasattr(model, "set_progress"):
            model.set_progress(round_ / self.train_cfg.rounds)

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
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        self.clip(model)
        optimizer.step()
        return loss.detach()

    def clip(self, model: nn.Module) -> None:
        if self.train_cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), self.train_cfg.grad_clip)

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None:
        """After a client's local work: keep state in ``ctx.store`` if the method wants."""

    def step_flops(self, model: nn.Module, batch_size: int) -> int:
        """Forward + backward FLOPs of the last step; a fixed network costs the same
        per sample every step, so it is counted once."""
        if self._flops_per_sample is None:
            self._flops_per_sample = train_flops(model, self.setup.in_shape)
        return self._flops_per_sample * batch_size

    # -- what travels and how it is combined ------------------------------------------
    def payload(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Tensors exchanged each way: the full state (weights and BN buffers)."""
        return model.state_dict()

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        """What client ``ctx.client`` receives of the server's model, before it trains
        ``ctx.steps`` steps: ``payload`` unless the method plans per client (the bytes are
        counted from what this returns)."""
        return self.payload(model)

    def upload(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        """What the client sends back after its local work; an entry no client sends is
        left unchanged by the server's mean."""
        return self.payload(model)

    def aggregator(self) -> StreamingMean:
        return StreamingMean()

    # -- server-side hooks --------------------------------------------------------------
    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module:
        """Called after aggregation; may return a different network (DFNAS's child).
        ``server`` offers federated work the server can ask of clients (BN statistics)."""
        return model

    def validation_fraction(self) -> float:
        """Share of each client's train split held out as its local validation split;
        a step then draws validation batches from ``ctx.val``."""
        return 0.0

    def evaluation_model(self, model: nn.Module, server: ServerContext) -> nn.Module:
        """The network whose test accuracy a round reports (DFNAS: during the search, the
        argmax path with its own BN statistics). Work done here is measurement, not
        training, and is not counted in the costs."""
        return model

    def stage_of(self, round_: int) -> str:
        """Which stage a round belongs to, for per-stage cost totals (search / train)."""
        return "train"

    def final_model(self, model: nn.Module) -> tuple[nn.Module, dict]:
        return model, self.model_spec()

    def extra_outputs(self) -> dict[str, Any]:
        """Method-specific files to write beside the result contract (name -> JSON)."""
        return {}

    def extra_metrics(self) -> dict[str, Any]:
        return {}

    # -- checkpointing of the method's own server state -----------------------------------
    # attributes the server keeps between rounds (DFNAS: alpha history, fixed layers, the
    # child's path); checkpointed with the model, so a killed run resumes exactly
    server_state: ClassVar[tuple[str, ...]] = ()

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.server_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.server_state:
            setattr(self, name, state[name])
