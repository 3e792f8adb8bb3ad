"""FedNAS (He, Annavaram, Avestimehr, arXiv 2004.08546): federated DARTS search with
MiLeNAS steps, the prior art DFNAS is measured against. Two stages: this class is the
search; the train stage is FedAvg on the network of the searched genotype, which the
search hands over as a file (genotype.json), as ``stages`` declares.

Faithful to the paper and without the public code's faults: the validation batch comes
from a client-local validation split (``val_fraction`` of each client's train split, the
original 50/50), the server takes the sample-weighted mean of every state entry and of
both alpha tensors, and the train stage builds the genotype actually found.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.cost.flops import flop_counter
from dfnas.errors import ConfigError
from dfnas.federated.config import LocalWork
from dfnas.federated.context import ServerContext, StepContext
from dfnas.methods.base import FedMethod, MethodSetup
from dfnas.methods.spec import METHODS
from dfnas.methods.stages import Stage
from dfnas.search.darts_supernet import derive_genotype
from dfnas.search.health import alpha_summary, search_warnings
from dfnas.search.milenas import milenas_step, milenas_step_one_train_pass
from dfnas.search.optimizers import SearchOptimizers


@dataclass(frozen=True)
class FednasOptions:
    val_fraction: float = 0.5  # FedNAS's original 50/50 split of each client's data
    lambda_train: float = 1.0  # MiLeNAS's lambda
    alpha_lr: float = 3e-4  # Adam on alpha, as DARTS / MiLeNAS
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    # MiLeNAS's order (alpha steps, then a fresh train pass at the new alpha for the
    # weights), or both gradients from one train pass (2 passes a step instead of 3)
    step_order: Literal["alpha_then_weights", "one_train_pass"] = "alpha_then_weights"

    def __post_init__(self) -> None:
        # what torch.optim.Adam would refuse inside the job, hours later
        for i, beta in enumerate(self.alpha_betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"alpha_betas[{i}]: expected a number in [0, 1), got {beta}")
        if self.alpha_lr < 0 or self.alpha_weight_decay < 0:
            raise ValueError("alpha_lr and alpha_weight_decay: expected numbers >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a share in (0, 1), got {self.val_fraction}")


# FLOPs per sample of one search step, by network and step: counting takes seconds (a
# dispatch hook on every op of three passes) and depends on nothing a run changes, so a
# process counts each network once
_STEP_FLOPS: dict[str, int] = {}


@METHODS.register(
    "fednas",
    options=FednasOptions,
    default_model="darts_search",
    searches=True,
    # the search hands its genotype (a file) to FedAvg on that network: the train stage
    stages=(
        Stage("search"),
        Stage("train", method="fedavg", model="darts", receives={"genotype": "genotype.json"}),
    ),
    writes={"genotype.json": "genotype", "alphas.json": "alpha_history"},
)
class Fednas(FedMethod):
    server_state = ("alpha_history", "genotype", "_search_loss")

    def __init__(self, setup: MethodSetup, options: FednasOptions) -> None:
        super().__init__(setup, options)
        if setup.model != "darts_search":
            raise ConfigError(f"model: fednas searches the darts_search space, not '{setup.model}'")
        if not 0 < options.val_fraction < 1:
            raise ConfigError("options.val_fraction: expected a share in (0, 1)")
        self.validation_fraction = options.val_fraction
        self.alpha_history: list[dict] = []
        self.genotype: dict | None = None  # of the last round's alpha
        self._search_loss = float("nan")

    def local_work(self, round_: int) -> LocalWork:
        return self.train_cfg.local_work(round_, stage="search")

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        # the search step's FLOPs are counted here, in the server's process, before any
        # client trains, so forked client workers inherit the count instead of each
        # counting again every round
        self.step_flops(model, 0, ctx)
        return super().download(model, ctx)

    def make_optimizer(self, model: nn.Module, lr: float, ctx: StepContext) -> Any:
        cfg, o = self.train_cfg, self.options
        return SearchOptimizers(
            torch.optim.SGD(
                model.weight_parameters(),
                lr=lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
            ),
            torch.optim.Adam(
                model.arch_parameters(),
                lr=o.alpha_lr,
                betas=tuple(o.alpha_betas),
                weight_decay=o.alpha_weight_decay,
            ),
        )

    def train_step(self, model, x, y, optimizer, ctx: StepContext) -> torch.Tensor:
        x_val, y_val = next(ctx.val)
        return self.search_step(model, x, y, x_val, y_val, optimizer)

    def search_step(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        optimizer: SearchOptimizers,
    ) -> torch.Tensor:
        """One local search step on a train and a validation batch: MiLeNAS's. A variant
        of FedNAS overrides this alone; its FLOPs are counted from it."""
        step = (
            milenas_step
            if self.options.step_order == "alpha_then_weights"
            else milenas_step_one_train_pass
        )
        return step(
            model,
            x,
            y,
            x_val,
            y_val,
            optimizer.weights,
            optimizer.alpha,
            self.options.lambda_train,
            self.options.grad_clip,
        )

    def step_flops(self, model: nn.Module, batch_size: int, ctx: StepContext) -> int:
        """FLOPs of one whole search step (MiLeNAS: all three passes), counted on a copy."""
        if self._flops_per_sample is None:
            key = json.dumps([self.model_spec(), repr(self.options)], sort_keys=True)
            if key not in _STEP_FLOPS:
                probe = copy.deepcopy(model).train()
                opts = self.make_optimizer(probe, 0.0, None)
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(2, *self.setup.in_shape, generator=gen).to(probe.alpha_device())
                y = torch.zeros(2, dtype=torch.long, device=x.device)
                with flop_counter() as counter:
                    self.search_step(probe, x, y, x, y, opts)
                _STEP_FLOPS[key] = counter.get_total_flops() // 2
            self._flops_per_sample = _STEP_FLOPS[key]
        return self._flops_per_sample * batch_size

    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module:
        self.alpha_history.append(
            {
                "normal": F.softmax(model.alphas_normal.detach().double(), -1).tolist(),
                "reduce": F.softmax(model.alphas_reduce.detach().double(), -1).tolist(),
            }
        )
        self.genotype = derive_genotype(model.alphas_normal, model.alphas_reduce)
        self._search_loss = server.row["train_loss"]
        server.row |= alpha_summary(self._probs())
        return model

    def _probs(self) -> torch.Tensor:
        """Every mixed edge's op probabilities, normal and reduction cells (edges x ops)."""
        last = self.alpha_history[-1]
        return torch.tensor(last["normal"] + last["reduce"])

    def extra_metrics(self) -> dict[str, Any]:
        probs = self._probs()
        return {
            "genotype": self.genotype,
            "search_train_loss": self._search_loss,
            **alpha_summary(probs),
            "search_warnings": search_warnings(self._search_loss, self.setup.num_classes, probs),
        }
