"""DFNAS's two phases, each the whole behaviour of the rounds it covers: the search
(DSNAS steps on the supernet, layers fixed as they commit, the child derived at the end)
and the child (FedAvg on the derived network, its weights inherited). ``Dfnas`` hands
every hook to the phase the run is in, chosen by round, so neither phase tests the type of
the network it is given. Each phase owns what it keeps between rounds (the search: its
fixed layers, its record, the child it derived; checkpointed through ``Dfnas``), reads
its method's settings and never writes them; what a client's round works out (its
planned paths, the path of its last step) travels in the client's ``StepContext``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from dfnas.cost import train_flops
from dfnas.federated.context import ServerContext, StepContext
from dfnas.methods.base import supervised_step
from dfnas.models.shufflenet_blocks import OPS
from dfnas.search.derive import derive_path
from dfnas.search.dsnas import budget_gradient, dsnas_step, sample_path, score_gradient
from dfnas.search.health import alpha_summary
from dfnas.search.optimizers import SearchOptimizers
from dfnas.search.shufflenet_supernet import ShuffleSupernet, only_ops

if TYPE_CHECKING:
    from dfnas.methods.dfnas import Dfnas


class ChildPhase:
    """Rounds [search_rounds, rounds): FedAvg on the derived child, which keeps the
    supernet's weights of its ops (DSNAS's weight decay groups kept)."""

    def __init__(self, method: Dfnas) -> None:
        self.m = method
        self._flops_per_sample: int | None = None  # the child's, the same every step

    def make_optimizer(self, model: nn.Module, lr: float, ctx: StepContext) -> Any:
        return self.m.sgd(list(model.named_parameters()), lr)

    def train_step(self, model, x, y, optimizer, ctx: StepContext) -> torch.Tensor:
        return supervised_step(model, x, y, optimizer, self.m.clip)

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None:
        pass

    def step_flops(self, model: nn.Module, batch_size: int, ctx: StepContext) -> int:
        if self._flops_per_sample is None:
            self._flops_per_sample = train_flops(model, self.m.setup.in_shape)
        return self._flops_per_sample * batch_size

    def payload(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return model.state_dict()

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.payload(model)

    def upload(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.payload(model)

    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module:
        return model

    def evaluation_model(self, model: nn.Module, server: ServerContext) -> nn.Module:
        return model


class SearchPhase:
    """Rounds [0, search_rounds): DSNAS steps on the supernet (one sampled path a step,
    weights and alpha from one loss), layers fixed as they commit, and at the end of the
    last search round the child derived, its BN statistics re-estimated by the clients."""

    # what the search keeps between rounds: a checkpoint holds it, so a killed run resumes
    STATE = (
        "fixed",
        "fixed_rows",
        "fixed_round",
        "search_losses",
        "child_path",
        "repairs",
        "alpha_history",
        "expected_macs",
    )

    def __init__(self, method: Dfnas) -> None:
        self.m = method
        self.fixed: dict[int, int] = {}  # layer -> the op it committed to
        self.fixed_rows: dict[int, list[float]] = {}  # alpha row at fixing, restored
        self.fixed_round: dict[int, int] = {}
        self.alpha_history: list[list[list[float]]] = []  # per search round: layers x ops
        self.search_losses: list[float] = []  # supernet train loss per search round
        self.expected_macs: list[float] = []  # under alpha, per search round
        self.child_path: list[int] | None = None  # derived at the end of the search
        self.repairs: list[dict] = []  # the budget's changes to the argmax path

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.STATE:
            setattr(self, name, state[name])

    def searching(self, round_: int) -> bool:
        """Whether alpha moves in this round (after the warm-up, before the child)."""
        return self.child_path is None and round_ >= self.m.options.warmup_rounds

    def derive(self, model: ShuffleSupernet) -> tuple[list[int], list[dict]]:
        """The child path alpha gives now: argmax, fixed layers kept, fitted to budgets."""
        path, repairs = derive_path(model.alpha, self.m.budgets(model))
        for i, op in self.fixed.items():  # fixed layers were committed during the search
            if not any(r["layer"] == i for r in repairs):
                path[i] = op
        return path, repairs

    def make_optimizer(self, model: ShuffleSupernet, lr: float, ctx: StepContext) -> Any:
        o = self.m.options
        opts = SearchOptimizers(
            self.m.sgd([(n, p) for n, p in model.named_parameters() if n != "alpha"], lr),
            torch.optim.Adam([model.alpha], lr=o.alpha_lr, betas=tuple(o.alpha_betas)),
        )
        if o.client_state == "optimizer" and "weights" in ctx.store:
            opts.weights.load_state_dict(ctx.store["weights"])
            opts.alpha.load_state_dict(ctx.store["alpha"])
            for group in opts.weights.param_groups:
                group["lr"] = lr  # the schedule, not the stored lr
        return opts

    def train_step(self, model: ShuffleSupernet, x, y, optimizer, ctx: StepContext) -> torch.Tensor:
        m = self.m
        plan = ctx.plan.get("paths")
        path = plan.pop(0) if plan else sample_path(model.alpha, ctx.generator, self.fixed)
        ctx.plan["last_path"] = path  # this step's FLOPs are its path's
        search = self.searching(ctx.round)
        optimizer.weights.zero_grad(set_to_none=True)
        layers = [search and i not in self.fixed for i in range(model.num_layers)]
        loss, dl_dz = dsnas_step(model, x, y, path, layers)
        m.clip(model)
        optimizer.weights.step()
        if search:
            grad = score_gradient(model.alpha, path, dl_dz)
            for b in m.budgets(model):
                grad += budget_gradient(
                    model.alpha, b.op_costs, b.fixed, b.limit, m.options.cost_coef
                )
            model.alpha.grad = grad.to(model.alpha.dtype)
            optimizer.alpha.step()
            self.restore_fixed_rows(model)  # Adam's moments would still move them
        return loss

    @torch.no_grad()
    def restore_fixed_rows(self, model: ShuffleSupernet) -> None:
        for i, row in self.fixed_rows.items():
            model.alpha[i] = torch.tensor(row, dtype=model.alpha.dtype)

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None:
        if self.m.options.client_state == "optimizer":
            ctx.store["weights"] = optimizer.weights.state_dict()
            ctx.store["alpha"] = optimizer.alpha.state_dict()

    def step_flops(self, model: ShuffleSupernet, batch_size: int, ctx: StepContext) -> int:
        return int(self.m.costs(model).train_flops(ctx.plan["last_path"]) * batch_size)

    def payload(self, model: ShuffleSupernet) -> dict[str, torch.Tensor]:
        state = model.state_dict()
        fixed = self.fixed
        if not fixed:
            return state
        # a fixed layer's other ops are pruned: they no longer travel
        keep = [{fixed[i]} if i in fixed else set(range(len(OPS))) for i in range(model.num_layers)]
        return only_ops(state, keep)

    def download(self, model: ShuffleSupernet, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Path-only communication: the client draws its round's paths first (from its
        own generator, as its steps would) and receives only those ops, alpha and the
        shared stem and head."""
        o = self.m.options
        if o.communication != "paths":
            return self.payload(model)
        n = ctx.steps if o.client_paths is None else o.client_paths
        draws = [sample_path(model.alpha, ctx.generator, self.fixed) for _ in range(max(n, 1))]
        plan = [draws[s % len(draws)] for s in range(ctx.steps)]
        ops = [{path[i] for path in plan} for i in range(model.num_layers)]
        ctx.plan["paths"], ctx.plan["received"] = plan, ops
        return only_ops(self.payload(model), ops)

    def upload(self, model: ShuffleSupernet, ctx: StepContext) -> dict[str, torch.Tensor]:
        state = self.payload(model)
        ops = ctx.plan.get("received")
        return state if ops is None else only_ops(state, ops)

    def end_round(self, model: ShuffleSupernet, round_: int, server: ServerContext) -> nn.Module:
        m = self.m
        self.restore_fixed_rows(model)
        probs = F.softmax(model.alpha.detach().double().cpu(), dim=-1)
        self.alpha_history.append(probs.tolist())
        self.search_losses.append(server.row["train_loss"])
        server.row |= alpha_summary(probs)
        table = m.costs(model)
        self.expected_macs.append(float(table.fixed_macs + (probs * table.op_macs).sum()))
        threshold = m.options.fix_threshold
        if self.searching(round_) and threshold is not None:
            top2 = probs.topk(2, dim=1).values
            for i in range(model.num_layers):
                if i not in self.fixed and top2[i, 0] - top2[i, 1] > threshold:
                    self.fixed[i] = int(probs[i].argmax())
                    self.fixed_rows[i] = model.alpha.detach()[i].tolist()
                    self.fixed_round[i] = round_
        if round_ < m.search_rounds - 1:
            return model
        path, self.repairs = self.derive(model)
        self.child_path = path
        child = model.child(path)
        server.recalibrate_bn(child, m.setup.in_shape, m.options.bn_batches)
        return child

    def evaluation_model(self, model: ShuffleSupernet, server: ServerContext) -> nn.Module:
        # the supernet's running statistics mix every path's activations: read the child
        # the search would derive now, with statistics of its own (not counted as cost)
        m = self.m
        child = model.child(self.derive(model)[0])
        server.recalibrate_bn(child, m.setup.in_shape, m.options.bn_batches, account=False)
        return child
