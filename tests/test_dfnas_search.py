"""DFNAS searches: the supernet learns and alpha moves at the shipped budgets, the child's
learning rate restarts at the switch, the space follows the DSNAS reference, BN statistics
pool exactly, and a search that did not search is flagged."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from helpers import CPU, make_method, partition, tiny_dataset
from test_dfnas import ToyChoiceNet
from torch import nn

from dfnas.config import check_config
from dfnas.data import load_dataset
from dfnas.errors import ConfigError
from dfnas.federated.aggregation import weighted_mean
from dfnas.federated.context import ServerContext, StepContext
from dfnas.federated.data import DeviceData, index_tensor
from dfnas.federated.loop import run_federated
from dfnas.methods.dfnas import DfnasOptions
from dfnas.models.shufflenet_blocks import OPS, ShuffleBlock
from dfnas.partition import make_partition
from dfnas.report.collect import comparison, pretty, unhealthy_searches
from dfnas.search.dsnas import sample_path, score_gradient
from dfnas.search.health import search_warnings

ROOT = Path(__file__).resolve().parents[1]
TINY_SPACE = {"stem": 8, "stages": [[1, 16], [2, 32]], "last": 32}


def default_config() -> dict:
    raw = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    return check_config(raw, ROOT / "workflow/schemas/config.schema.yaml")


def default_dfnas_method(ds):
    """The default config's `dfnas` run, exactly as the workflow builds it."""
    config = default_config()
    run = config["runs"]["dfnas"]
    training = {**config["training"], **run.get("training", {})}
    return make_method(
        ds,
        "dfnas",
        "shufflenetv2",
        options=run["options"],
        model_args=run["model_args"],
        **training,
    )


@pytest.mark.slow
def test_default_config_search_leaves_chance_and_moves_alpha_on_digits():
    ds = load_dataset("digits")
    part = make_partition(ds.y_train, {"partitioner": "iid", "num_clients": 10})
    method = default_dfnas_method(ds)
    res = run_federated(method, ds, part, seed=0, settings=CPU, log=lambda *_: None)
    search = [h for h in res.history if h["stage"] == "search"]
    assert len(search) == method.search_rounds
    # below 0.6 ln C before the child is derived: the supernet learned
    assert search[-1]["train_loss"] < 0.6 * math.log(ds.num_classes), search[-1]
    assert search[-1]["alpha_max_prob"] > 0.4  # alpha left uniform (0.25)
    assert search[-1]["alpha_entropy"] < search[0]["alpha_entropy"]
    assert res.metrics["search_warnings"] == []
    assert res.metrics["accuracy"] > 0.9


def test_federated_alpha_finds_the_clearly_better_op_with_default_settings():
    """10 clients, each taking the default config's number of alpha steps per round with
    the default alpha optimizer, the server averaging alpha: op 0 (the true classifier)
    must win over three random maps within the default search length."""
    defaults, config = DfnasOptions(), default_config()
    options = {**vars(defaults), **config["runs"]["dfnas"]["options"]}
    ds = load_dataset("digits")
    per_client = len(ds.y_train) * 0.8 / 10  # after the local test split
    steps = math.ceil(per_client / options["search"]["batch_size"])
    alpha_rounds = options["search_rounds"] - options["warmup_rounds"]

    g = torch.Generator().manual_seed(0)
    true = torch.randn(3, 6, generator=g)
    net = ToyChoiceNet([6, 3])
    net.mats[0][0] = true
    alpha = torch.full((1, 4), 1.0)
    sampler = torch.Generator().manual_seed(1)
    for _ in range(alpha_rounds):
        replies = []
        for client in range(10):
            x = torch.randn(64, 6, generator=torch.Generator().manual_seed(client))
            y = (x @ true.T).argmax(1)
            net.alpha = nn.Parameter(alpha.clone())
            opt = torch.optim.Adam([net.alpha], lr=options["alpha_lr"], betas=defaults.alpha_betas)
            for _ in range(steps):
                path = sample_path(net.alpha, sampler)
                z = [torch.ones((), requires_grad=True)]
                F.cross_entropy(net(x, path, z), y).backward()
                net.alpha.grad = score_gradient(net.alpha, path, z[0].grad.view(1))
                opt.step()
            replies.append({"alpha": net.alpha.detach()})
        alpha = weighted_mean(replies, [1] * 10)["alpha"]
    probs = F.softmax(alpha, dim=-1)[0]
    assert probs.argmax() == 0 and probs[0] > 0.5, probs


def _method(ds, **options):
    train = dict(rounds=8, batch_size=16, lr=0.1, local_epochs=1, lr_min=0.0)
    options.setdefault("search_rounds", 4)
    options.setdefault("warmup_rounds", 0)
    return make_method(ds, "dfnas", "shufflenetv2", options=options, model_args=TINY_SPACE, **train)


def test_child_learning_rate_restarts_a_cosine_at_the_switch():
    ds = tiny_dataset()
    m = _method(ds, search={"batch_size": 8, "lr": 0.2})
    search_rate_at_switch = m.search_cfg.lr_at(4)  # the search's cosine, one round on
    assert m.local_work(0).lr == pytest.approx(0.2) and m.local_work(3).batch_size == 8
    assert m.local_work(4).lr == pytest.approx(search_rate_at_switch)
    assert m.local_work(4).batch_size == 16  # the child trains at the run's batch size
    child_rates = [m.local_work(r).lr for r in range(4, 8)]
    assert child_rates == sorted(child_rates, reverse=True) and child_rates[-1] > 0
    # the old behaviour: the tail of the run's one cosine
    old = _method(ds, child_schedule="continue")
    assert [old.local_work(r).lr for r in range(4, 8)] == [
        old.train_cfg.lr_at(r) for r in range(4, 8)
    ]
    assert sum(child_rates) > sum(old.local_work(r).lr for r in range(4, 8))


def test_phase_settings_are_checked():
    ds = tiny_dataset()
    with pytest.raises(ConfigError, match="options.search.momentum: not a per-phase setting"):
        _method(ds, search={"momentum": 0.5})
    with pytest.raises(ConfigError, match="options.child_schedule"):
        _method(ds, child_schedule="warm")
    with pytest.raises(ConfigError, match="options.child: training.batch_size"):
        _method(ds, child={"batch_size": 0})


@pytest.mark.parametrize("op", OPS)
def test_projection_branch_takes_the_block_kernel(op):
    block = ShuffleBlock(op, 16, 32, stride=2)
    k = 3 if op == "xception" else int(op[-1])
    assert block.proj[0].kernel_size == (k, k)
    assert all(m.eps == 1e-2 for m in block.modules() if isinstance(m, nn.BatchNorm2d))


def test_no_weight_decay_on_bn_and_bias():
    m = _method(tiny_dataset())
    net = m.build_model()
    opt = m.make_optimizer(net, 0.1, StepContext(0, 0, torch.Generator()))
    decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in opt.weights.param_groups}
    for name, param in net.named_parameters():
        if name == "alpha":
            assert all(id(param) not in ids for ids in decay.values())
        elif param.dim() <= 1:  # BN scales and shifts, biases
            assert id(param) in decay[0.0], name
        else:
            assert id(param) in decay[m.train_cfg.weight_decay], name


def test_fixed_alpha_row_does_not_drift_under_restored_adam_moments():
    ds = tiny_dataset()
    m = _method(ds, client_state="optimizer")
    net = m.build_model()
    store: dict = {}
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, *ds.in_shape), torch.randint(0, 4, (8,))
    for round_ in range(2):
        ctx = StepContext(round_, 0, gen, store)
        opt = m.make_optimizer(net, 0.1, ctx)
        for _ in range(3):
            m.train_step(net, x, y, opt, ctx)
        m.end_client(net, opt, ctx)
        if round_ == 0:  # fix layer 0 with its current row, as end_round does
            m.phase.fixed[0] = int(net.alpha[0].argmax())
            m.phase.fixed_rows[0] = net.alpha.detach()[0].tolist()
    assert net.alpha.detach()[0].tolist() == m.phase.fixed_rows[0]


def test_federated_bn_statistics_are_those_of_the_union_of_clients():
    ds = tiny_dataset(n=160)
    data = DeviceData.from_dataset(ds, torch.device("cpu"), "none", channels_last=False)
    # non-IID: client 0 holds classes 0-1, client 1 classes 2-3 (different means)
    labels = ds.y_train
    idx = [index_tensor((labels < 2).nonzero()[0], "cpu")]
    idx.append(index_tensor((labels >= 2).nonzero()[0], "cpu"))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    row = {"train_flops": 0, "bytes_up": 0, "bytes_down": 0}
    ServerContext(data, idx, [0, 1], row, batch_size=7).recalibrate_bn(model, ds.in_shape)
    with torch.no_grad():
        feats = model[0](data.prepare(data.x_train[torch.cat(idx)]))
    union = feats.transpose(0, 1).flatten(1).double()
    bn = model[1]
    assert torch.allclose(bn.running_mean.double(), union.mean(1), atol=1e-5)
    assert torch.allclose(bn.running_var.double(), union.var(1), rtol=1e-4)
    # averaging the two clients' variances would miss the spread of their means
    per_client = [model[0](data.prepare(data.x_train[i])).transpose(0, 1).flatten(1) for i in idx]
    naive = torch.stack([f.detach().var(1) for f in per_client]).mean(0)
    assert (naive < bn.running_var - 1e-3).all()
    assert row["train_flops"] > 0 and row["bytes_up"] > 0


def test_bn_recalibration_stops_after_the_batch_bound():
    ds = tiny_dataset(n=160)
    data = DeviceData.from_dataset(ds, torch.device("cpu"), "none", channels_last=False)
    idx = [index_tensor(range(len(ds.y_train)), "cpu")]
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    costs = []
    for bound in (None, 2):
        row = {"train_flops": 0, "bytes_up": 0, "bytes_down": 0}
        ServerContext(data, idx, [0], row, batch_size=10).recalibrate_bn(
            model, ds.in_shape, max_batches=bound
        )
        costs.append(row["train_flops"])
    assert costs[1] * len(ds.y_train) == pytest.approx(costs[0] * 20)


def test_search_warnings_and_the_table_flag():
    uniform = torch.full((4, 4), 0.25)
    moved = torch.tensor([[0.7, 0.1, 0.1, 0.1]] + [[0.25] * 4] * 3)
    assert search_warnings(0.5, 10, moved) == []
    warnings = search_warnings(2.2, 10, uniform)
    assert [w.split(":")[0] for w in warnings] == ["near_chance", "alpha_uniform"]
    runs = pd.DataFrame(
        {
            "dataset": ["d", "d"],
            "partition": ["p", "p"],
            "run": ["dfnas", "fedavg"],
            "seed": [0, 0],
            "method": ["dfnas", "fedavg"],
            "run_dir": ["r/dfnas", "r/fedavg"],
            "search_warnings": ["; ".join(warnings), ""],
            **{
                k: [0.5, 0.5]
                for k in (
                    "accuracy",
                    "personalized_accuracy_mean",
                    "params",
                    "macs",
                    "rounds",
                    "train_flops",
                    "comm_bytes",
                    "peak_memory_bytes",
                    "client_memory_bytes",
                    "wall_seconds",
                    "compute_seconds",
                )
            },
        }
    )
    table = comparison(runs)
    assert pretty(table)["run"].tolist() == ["dfnas (!)", "fedavg"]
    assert unhealthy_searches(runs) == [f"r/dfnas: {'; '.join(warnings)}"]


@pytest.mark.slow
def test_search_round_accuracy_is_measured_outside_the_costs():
    ds = tiny_dataset(size=8)
    part = partition(ds, num_clients=3)
    runs = []
    for every in (1, 8):  # evaluate every round, or only at the end
        m = make_method(
            ds,
            "dfnas",
            "shufflenetv2",
            options={"search_rounds": 4, "warmup_rounds": 0},
            model_args=TINY_SPACE,
            rounds=8,
            batch_size=16,
            eval_every=every,
        )
        runs.append(run_federated(m, ds, part, seed=0, settings=CPU, log=lambda *_: None))
    search = [h for h in runs[0].history if h["stage"] == "search"]
    assert all(0 <= h["test_accuracy"] <= 1 for h in search)
    assert all("alpha_entropy" in h and "alpha_max_prob" in h for h in search)
    # the argmax child's BN re-estimation for the figure is not the clients' training
    assert [h["train_flops"] for h in runs[0].history] == [
        h["train_flops"] for h in runs[1].history
    ]


def test_a_two_stage_result_carries_its_search_warnings():
    from dfnas.results import SUMMED, combine_stages

    stage = {k: 1 for k in (*SUMMED, "peak_memory_bytes")}
    search = {**stage, "stage": "search", "search_warnings": ["alpha_uniform: ..."]}
    assert combine_stages(search, dict(stage))["search_warnings"] == ["alpha_uniform: ..."]
