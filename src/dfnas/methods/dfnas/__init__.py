"""DFNAS: Direct Federated NAS (Garg, Saha, Dutta, arXiv 2010.06223), one stage.

Rounds [0, search_rounds) search: every sampled client runs DSNAS steps on the supernet
(``dfnas.search.dsnas``), one sampled path per step, updating weights (SGD) and alpha
(Adam) from one loss; the server averages weights, BN buffers and alpha. Alpha stays put
for the first ``warmup_rounds``. A layer whose top-1 probability leads its top-2 by
``fix_threshold`` is fixed: it stops sampling, its alpha row is frozen (restored after
every step, as DSNAS restores it every epoch), and its other ops stop travelling.

At the end of round search_rounds - 1 the child is derived (argmax, repaired to fit any
device budget), keeps its inherited weights, has its BN statistics re-estimated by the
clients (``federated.bn``), and trains on with FedAvg for the remaining rounds. Nothing is
trained from scratch, and the total budget is the same number of rounds every other
method gets.

Each phase has its own local work (``search`` and ``child``: local epochs or steps, batch
size, learning rate; the run's ``training`` otherwise): a supernet that samples a new path
every step needs many more steps than one network before it leaves chance. The child's
learning rate follows DSNAS's child recipe (``child_schedule: restart``): a fresh cosine
over the child's rounds, starting from the rate the search had reached; ``continue`` keeps
the tail of the run's one cosine. Weights decay as in DSNAS: not on BN parameters and
biases.

A search round's accuracy is that of the current argmax child with BN statistics
re-estimated on the round's clients (measurement only, not counted in the costs); its
history row also holds alpha's mean entropy and largest probability
(``dfnas.search.health``), and the run's metrics say when the search ended near chance or
with a uniform alpha.

Client state between rounds (``client_state``): ``none`` (default) gives every client
fresh optimizers each round, as FedAvg does; ``optimizer`` keeps each client's SGD
momentum and Adam moments across the rounds it is sampled in (stale in between).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from dfnas.errors import ConfigError
from dfnas.federated.config import LocalWork, cosine
from dfnas.federated.context import ServerContext, StepContext
from dfnas.io import read_json
from dfnas.methods.base import FedMethod, MethodSetup
from dfnas.methods.dfnas.phases import ChildPhase, SearchPhase
from dfnas.methods.spec import METHODS
from dfnas.methods.stages import RunFigure
from dfnas.models import model_spec
from dfnas.models.shufflenet import ShuffleNetV2
from dfnas.models.shufflenet_blocks import OPS
from dfnas.search.derive import Budget
from dfnas.search.health import alpha_summary, search_warnings
from dfnas.search.latency import measure_latency_table
from dfnas.search.optimizers import decay_groups
from dfnas.search.shufflenet_supernet import CostTable, ShuffleSupernet


@dataclass(frozen=True)
class DfnasOptions:
    # default: a quarter of the rounds (at least warmup_rounds + 1). The child trains about
    # as a fresh network would, so every search round is a round it lacks: half the rounds
    # left it 18-21 points under its space's fixed network on a held-out 28x28 set, a
    # quarter 3 (docs/verdict.md, "The recipe on a second dataset")
    search_rounds: int | None = None
    warmup_rounds: int = 1  # weight-only rounds before alpha moves (DSNAS warm-up)
    # local work per phase, over the run's training (keys: federated.config.LOCAL_WORK_KEYS)
    search: dict = field(default_factory=dict)
    child: dict = field(default_factory=dict)
    # DSNAS: a fresh cosine from the search's rate ("restart"); or the run's cosine's tail
    child_schedule: Literal["restart", "continue"] = "restart"
    # DSNAS: Adam, betas (0.5, 0.999), no weight decay, lr 1e-3 over ~100k ImageNet steps.
    # A federated search here takes hundreds of alpha steps per client, and Adam moves a
    # logit by at most ~lr per step: at 1e-3 alpha cannot leave uniform (config/README.md)
    alpha_lr: float = 0.1
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    fix_threshold: float | None = 0.3  # DSNAS's early fixing; null disables it
    bn_batches: int | None = 8  # BN re-estimation: batches per client (null: all data)
    budget_macs: float | None = None  # device budget: MACs per inference
    # device budget: latency from the table the workflow measures (``reads``, ``makes``)
    budget_latency_ms: float | None = None
    cost_coef: float = 1.0
    client_state: Literal["none", "optimizer"] = "none"
    # what a search round sends each client: the whole supernet, or only the ops of the
    # paths it will train (drawn before it downloads; the rest of the model too)
    communication: Literal["supernet", "paths"] = "supernet"
    # with paths: how many paths a client draws per round, cycled over its steps (null:
    # one per step, DSNAS's estimator unchanged; 1: one path for the whole round)
    client_paths: int | None = None
    device_type: str | None = None  # the device type this search targets (recorded)


def device_options(device: str, budget: dict[str, float]) -> dict[str, Any]:
    """A run that lists ``devices`` searches once per type, under that type's budget."""
    options: dict[str, Any] = {"device_type": device}
    if "macs" in budget:
        options["budget_macs"] = budget["macs"]
    if "latency_ms" in budget:
        options["budget_latency_ms"] = budget["latency_ms"]
    return options


def input_files(options: dict[str, Any]) -> tuple[str, ...]:
    """A latency budget reads the latency table the workflow measures on the training
    machine (``search.latency``)."""
    return ("latency_table",) if options.get("budget_latency_ms") is not None else ()


def latency_table(
    in_shape: tuple[int, int, int], num_classes: int, model_args: dict[str, Any], device: Any
) -> dict[str, Any]:
    """Per-op latency of this space's candidate blocks, measured on this machine."""
    return measure_latency_table(ShuffleSupernet(in_shape, num_classes, **model_args), device)


@METHODS.register(
    "dfnas",
    options=DfnasOptions,
    default_model="shufflenetv2",
    searches=True,
    # one stage (search, then the child, in one job); its alpha record gets a figure
    writes={"architecture.json": "architecture"},
    figures=(
        RunFigure(
            "architecture",
            source="architecture.json",
            draw="dfnas.methods.dfnas.figure:architecture_evolution",
            caption="architecture.rst",
        ),
    ),
    per_device=device_options,
    reads=input_files,
    makes={"latency_table": latency_table},
)
class Dfnas(FedMethod):
    server_state = ("search_state",)  # the search phase's; the child phase keeps none

    def __init__(self, setup: MethodSetup, options: DfnasOptions) -> None:
        super().__init__(setup, options)
        o, rounds = options, self.train_cfg.rounds
        if setup.model != "shufflenetv2":
            raise ConfigError(f"model: dfnas searches the shufflenetv2 space, not '{setup.model}'")
        unknown = set(setup.model_args) - {"stem", "stages", "last"}
        if unknown:
            raise ConfigError(f"model_args.{sorted(unknown)[0]}: not a supernet argument")
        quarter = min(rounds, max(o.warmup_rounds + 1, rounds // 4))
        self.search_rounds = o.search_rounds if o.search_rounds is not None else quarter
        if not 1 <= self.search_rounds <= rounds:
            raise ConfigError(f"options.search_rounds: expected 1..{rounds} (the rounds)")
        if not 0 <= o.warmup_rounds < self.search_rounds:
            raise ConfigError("options.warmup_rounds: must be below search_rounds")
        if o.budget_latency_ms is not None and "latency_table" not in setup.inputs:
            raise ConfigError(
                "options.budget_latency_ms: a latency budget needs a latency table (the "
                "workflow measures one; by hand: dfnas run --latency-table FILE)"
            )
        if o.client_paths is not None and o.client_paths < 1:
            raise ConfigError("options.client_paths: expected an integer >= 1 or null")
        if o.bn_batches is not None and o.bn_batches < 1:
            raise ConfigError("options.bn_batches: expected an integer >= 1 or null")
        if o.alpha_lr < 0:
            raise ConfigError("options.alpha_lr: expected a number >= 0")
        self.search_cfg = self.train_cfg.phase(dict(o.search), "options.search")
        self.child_cfg = self.train_cfg.phase(dict(o.child), "options.child")
        self._costs: CostTable | None = None
        self._budgets: list[Budget] | None = None
        # the phases; the search's state is the run's server state (checkpointed)
        self._search, self._child = SearchPhase(self), ChildPhase(self)
        if o.budget_macs is not None:  # below the space's cheapest child at this input?
            table = self.costs(self.supernet())
            Budget("macs", o.budget_macs, table.op_macs, table.fixed_macs).check_reachable()

    # -- networks ----------------------------------------------------------------------
    def supernet(self) -> ShuffleSupernet:
        s = self.setup
        return ShuffleSupernet(s.in_shape, s.num_classes, **s.model_args)

    @property
    def child_path(self) -> list[int] | None:
        """The derived child's ops (an index per layer); None while searching."""
        return self._search.child_path

    def build_model(self) -> nn.Module:
        net = self.supernet()
        if self.child_path is None:
            return net
        args = net.child_args(self.child_path)
        return ShuffleNetV2(self.setup.in_shape, self.setup.num_classes, **args)

    def costs(self, net: ShuffleSupernet) -> CostTable:
        if self._costs is None:
            self._costs = CostTable(net)
        return self._costs

    def budgets(self, net: ShuffleSupernet) -> list[Budget]:
        if self._budgets is None:
            o = self.options
            self._budgets = []
            if o.budget_macs is not None:
                table = self.costs(net)
                self._budgets.append(Budget("macs", o.budget_macs, table.op_macs, table.fixed_macs))
            if o.budget_latency_ms is not None:
                op_ms, fixed_ms = load_latency(self.setup.inputs["latency_table"], net)
                self._budgets.append(Budget("latency_ms", o.budget_latency_ms, op_ms, fixed_ms))
            for b in self._budgets:
                b.check_reachable()
        return self._budgets

    @property
    def phase(self) -> SearchPhase | ChildPhase:
        """The search until the child is derived (at the end of round search_rounds - 1),
        then the child: chosen by where the run is, never by the network's type."""
        return self._search if self.child_path is None else self._child

    def local_work(self, round_: int) -> LocalWork:
        s, rounds = self.search_rounds, self.train_cfg.rounds
        if round_ < s:
            return self.search_cfg.local_work(round_, stage="search")
        child = self.child_cfg
        if self.options.child_schedule == "continue":
            return child.local_work(round_)
        # DSNAS's child: the search's current rate (or the child's own lr), then a fresh
        # cosine over the child's rounds
        start = child.lr if "lr" in self.options.child else self.search_cfg.lr_at(s)
        if child.lr_schedule == "constant":
            return child.local_work(round_, lr=start)
        return child.local_work(round_, lr=cosine(start, child.lr_min, (round_ - s) / (rounds - s)))

    def sgd(self, named: list[tuple[str, nn.Parameter]], lr: float) -> torch.optim.SGD:
        cfg = self.train_cfg
        return torch.optim.SGD(decay_groups(named, cfg.weight_decay), lr=lr, momentum=cfg.momentum)

    # -- the hooks, each the current phase's -------------------------------------------
    def make_optimizer(self, model: nn.Module, lr: float, ctx: StepContext) -> Any:
        return self.phase.make_optimizer(model, lr, ctx)

    def train_step(self, model, x, y, optimizer, ctx: StepContext) -> torch.Tensor:
        return self.phase.train_step(model, x, y, optimizer, ctx)

    def end_client(self, model: nn.Module, optimizer: Any, ctx: StepContext) -> None:
        self.phase.end_client(model, optimizer, ctx)

    def step_flops(self, model: nn.Module, batch_size: int, ctx: StepContext) -> int:
        return self.phase.step_flops(model, batch_size, ctx)

    def payload(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return self.phase.payload(model)

    def download(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.phase.download(model, ctx)

    def upload(self, model: nn.Module, ctx: StepContext) -> dict[str, torch.Tensor]:
        return self.phase.upload(model, ctx)

    def end_round(self, model: nn.Module, round_: int, server: ServerContext) -> nn.Module:
        return self.phase.end_round(model, round_, server)

    def evaluation_model(self, model: nn.Module, server: ServerContext) -> nn.Module:
        return self.phase.evaluation_model(model, server)

    @property
    def search_state(self) -> dict[str, Any]:
        """What the search keeps between rounds (``server_state``: the checkpoint's)."""
        return self._search.state_dict()

    @search_state.setter
    def search_state(self, state: dict[str, Any]) -> None:
        self._search.load_state_dict(state)

    def final_model(self, model: nn.Module) -> tuple[nn.Module, dict]:
        net = self.supernet()
        args = net.child_args(self.child_path)
        s = self.setup
        return model, model_spec("shufflenetv2", s.in_shape, s.num_classes, **args)

    def architecture(self) -> dict[str, Any]:
        net = self.supernet()
        table = self.costs(net)
        budgets = self.budgets(net)
        search = self._search
        return {
            "ops": list(OPS),
            "layers": [{"channels": c, "stride": s} for c, s in net.plan],
            "chosen": [OPS[c] for c in self.child_path],
            "alpha_probs": search.alpha_history,  # per search round: layers x ops
            "search_train_loss": search.search_losses,  # per search round
            "num_classes": self.setup.num_classes,
            "expected_macs": search.expected_macs,
            "fixed": {
                str(i): {"op": OPS[c], "round": search.fixed_round[i]}
                for i, c in search.fixed.items()
            },
            "search_rounds": self.search_rounds,
            "warmup_rounds": self.options.warmup_rounds,
            "child_macs": table.macs(self.child_path),
            "budgets": {
                b.name: {"limit": b.limit, "child": b.cost(self.child_path)} for b in budgets
            },
            "repairs": search.repairs,
            "device_type": self.options.device_type,
        }

    def extra_metrics(self) -> dict[str, Any]:
        arch = self.architecture()
        within = all(v["child"] <= v["limit"] for v in arch["budgets"].values())
        search = self._search
        final = torch.tensor(search.alpha_history[-1])
        return {
            "search_rounds": self.search_rounds,
            "search_train_loss": search.search_losses[-1],
            **alpha_summary(final),
            "alpha_top_prob_per_layer": final.max(dim=1).values.tolist(),
            "search_warnings": search_warnings(
                search.search_losses[-1], self.setup.num_classes, final
            ),
            "child_ops": arch["chosen"],
            "within_budget": within,
            "budgets": arch["budgets"],
            "device_type": self.options.device_type,
        }


def load_latency(path: str | None, net: ShuffleSupernet) -> tuple[torch.Tensor, float]:
    blob = read_json(path)
    op_ms = torch.tensor(blob["op_ms"], dtype=torch.float64)
    if tuple(op_ms.shape) != (net.num_layers, len(OPS)) or blob.get("ops") != list(OPS):
        raise ConfigError(
            f"latency table {path} is for {tuple(op_ms.shape)} layers x ops, "
            f"this space has {(net.num_layers, len(OPS))}"
        )
    return op_ms, float(blob["fixed_ms"])
