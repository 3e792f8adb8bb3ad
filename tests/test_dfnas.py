"""DFNAS: the DSNAS estimator, one path per step, alpha averaging, budgets, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import CPU, make_method, partition, tiny_dataset
from torch import nn

from dfnas.cost import forward_flops
from dfnas.errors import ConfigError
from dfnas.federated.aggregation import weighted_mean
from dfnas.federated.checkpoint import CheckpointFile
from dfnas.federated.context import StepContext
from dfnas.federated.loop import run_federated
from dfnas.methods import METHODS
from dfnas.models.shufflenet_blocks import OPS
from dfnas.search.derive import Budget, derive_path
from dfnas.search.dsnas import (
    budget_gradient,
    expected_cost,
    sample_path,
    score_gradient,
)
from dfnas.search.shufflenet_supernet import CostTable, ShuffleSupernet

TINY_SPACE = {"stem": 8, "stages": [[1, 16], [2, 32]], "last": 32}
QUIET = {"log": lambda *_: None}


class ToyChoiceNet(nn.Module):
    """Layers of fixed linear ops: y = Z2 A2[c2] (Z1 A1[c1] x). A linear loss of y is
    linear in each Z, where the DSNAS estimator is the exact score-function gradient."""

    def __init__(self, dims: list[int], seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.mats = [
            torch.randn(4, dims[i + 1], dims[i], generator=g) for i in range(len(dims) - 1)
        ]
        self.alpha = nn.Parameter(torch.randn(len(self.mats), 4, generator=g))

    def forward(self, x, path, z=None):
        for i, mats in enumerate(self.mats):
            x = x @ mats[path[i]].T
            if z is not None and z[i] is not None:
                x = x * z[i]
        return x


def test_estimator_mean_matches_exact_gradient_of_expected_loss():
    net = ToyChoiceNet([3, 4, 2])
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    w = torch.tensor([1.0, -2.0])

    def loss_of(path, z=None):
        return (net(x, path, z) @ w).mean()

    probs = F.softmax(net.alpha, dim=-1)
    expected = sum(
        probs[0, a] * probs[1, b] * loss_of([a, b]).detach() for a in range(4) for b in range(4)
    )
    (exact,) = torch.autograd.grad(expected, net.alpha)

    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(4000):
        path = sample_path(net.alpha, gen)
        z = [torch.ones((), requires_grad=True) for _ in range(2)]
        loss_of(path, z).backward()
        dl_dz = torch.stack([zi.grad for zi in z])
        samples.append(score_gradient(net.alpha, path, dl_dz))
    samples = torch.stack(samples)
    mean, sem = samples.mean(0), samples.std(0) / len(samples) ** 0.5
    assert torch.all((mean - exact).abs() <= 4 * sem + 1e-6), (mean, exact, sem)


def test_alpha_moves_toward_the_clearly_better_op():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    true = torch.randn(3, 6, generator=g)
    y = (x @ true.T).argmax(1)
    net = ToyChoiceNet([6, 3])
    with torch.no_grad():
        net.alpha.zero_()
    net.mats[0][0] = true  # op 0 is the true classifier, ops 1-3 are random maps
    opt = torch.optim.Adam([net.alpha], lr=0.05, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        path = sample_path(net.alpha, gen)
        z = [torch.ones((), requires_grad=True)]
        F.cross_entropy(net(x, path, z), y).backward()
        net.alpha.grad = score_gradient(net.alpha, path, z[0].grad.view(1))
        opt.step()
    probs = F.softmax(net.alpha.detach(), dim=-1)[0]
    assert probs.argmax() == 0 and probs[0] > 0.5


def _tiny_method(ds, **options):
    train = dict(rounds=4, batch_size=16, lr=0.05, local_epochs=1)
    train.update(options.pop("train", {}))
    options.setdefault("search_rounds", 2)
    options.setdefault("warmup_rounds", 0)
    return make_method(ds, "dfnas", "shufflenetv2", options=options, model_args=TINY_SPACE, **train)


def test_one_step_runs_exactly_one_path_forward_and_backward_once():
    ds = tiny_dataset()
    method = _tiny_method(ds)
    net = method.build_model()
    calls = {(i, c): 0 for i in range(net.num_layers) for c in range(len(OPS))}
    for i, layer in enumerate(net.layers):
        for c, op in enumerate(layer.ops):
            op.register_forward_hook(lambda *_, key=(i, c): calls.__setitem__(key, calls[key] + 1))
    passes = {"forward": 0, "backward": 0}
    net.register_forward_hook(lambda *_: passes.__setitem__("forward", passes["forward"] + 1))
    net.classifier.register_full_backward_hook(
        lambda *_: passes.__setitem__("backward", passes["backward"] + 1)
    )
    ctx = StepContext(round=0, client=0, generator=torch.Generator().manual_seed(0))
    opt = method.make_optimizer(net, 0.1, ctx)
    x = torch.randn(8, *ds.in_shape)
    alpha_before = net.alpha.detach().clone()
    method.train_step(net, x, torch.randint(0, 4, (8,)), opt, ctx)
    ran = sorted(k for k, v in calls.items() if v)
    assert ran == [(i, c) for i, c in enumerate(ctx.plan["last_path"])]
    assert all(v <= 1 for v in calls.values())
    assert passes == {"forward": 1, "backward": 1}
    assert not torch.equal(alpha_before, net.alpha.detach())


def test_child_inherits_the_path_weights():
    net = ShuffleSupernet((1, 8, 8), 4, **TINY_SPACE).eval()
    path = [3, 1, 2]
    child = net.child(path).eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(child(x), net(x, path), atol=1e-6)


def test_alpha_travels_and_is_averaged():
    ds = tiny_dataset()
    method = _tiny_method(ds)
    a, b = method.build_model(), method.build_model()
    with torch.no_grad():
        a.alpha.fill_(1.0)
        b.alpha.fill_(-1.0)
    pa, pb = method.payload(a), method.payload(b)
    assert "alpha" in pa
    mean = weighted_mean([pa, pb], [3, 1])
    assert torch.allclose(mean["alpha"], torch.full_like(a.alpha, 0.5))


def test_budget_gradient_lowers_expected_cost():
    net = ShuffleSupernet((3, 32, 32), 10, **TINY_SPACE)
    table = CostTable(net)
    alpha = torch.zeros_like(net.alpha, requires_grad=True)
    start = expected_cost(alpha, table.op_macs, table.fixed_macs).item()
    budget = table.fixed_macs + float(table.op_macs.min(1).values.sum())
    opt = torch.optim.Adam([alpha], lr=0.1)
    for _ in range(20):
        alpha.grad = budget_gradient(alpha, table.op_macs, table.fixed_macs, budget, 1.0)
        opt.step()
    assert expected_cost(alpha, table.op_macs, table.fixed_macs).item() < start


def test_cost_table_matches_a_counted_child():
    net = ShuffleSupernet((3, 32, 32), 10, **TINY_SPACE)
    table = CostTable(net)
    for path in ([0, 0, 0], [3, 2, 1]):
        assert table.macs(path) == forward_flops(net.child(path), (3, 32, 32)) / 2


def test_derived_child_is_repaired_into_budget():
    net = ShuffleSupernet((3, 32, 32), 10, **TINY_SPACE)
    table = CostTable(net)
    alpha = torch.zeros(net.num_layers, len(OPS))
    alpha[:, OPS.index("shuffle7x7")] = 3.0  # the search likes the big kernel
    want = [OPS.index("shuffle7x7")] * net.num_layers
    limit = (table.macs(want) + Budget("macs", 0, table.op_macs, table.fixed_macs).cheapest()) / 2
    budget = Budget("macs", limit, table.op_macs, table.fixed_macs)
    path, repairs = derive_path(alpha, [budget])
    assert budget.cost(path) <= limit and repairs
    with pytest.raises(ConfigError, match="below the cheapest child"):
        derive_path(alpha, [Budget("macs", 10.0, table.op_macs, table.fixed_macs)])


@pytest.mark.slow
def test_search_derives_a_child_within_budget_and_is_deterministic():
    ds = tiny_dataset(size=32, channels=3)
    part = partition(ds, num_clients=3)
    net = ShuffleSupernet(ds.in_shape, ds.num_classes, **TINY_SPACE)
    table = CostTable(net)
    cheapest = table.fixed_macs + float(table.op_macs.min(1).values.sum())
    dearest = table.fixed_macs + float(table.op_macs.max(1).values.sum())
    budget = (cheapest + dearest) / 2
    methods = [_tiny_method(ds, budget_macs=budget) for _ in range(2)]
    runs = [run_federated(m, ds, part, seed=0, settings=CPU, **QUIET) for m in methods]
    files = [METHODS.get("dfnas").files(m) for m in methods]  # what the run writes
    res = runs[0]
    assert res.metrics["within_budget"]
    assert res.metrics["macs"] <= budget  # counted on the final network itself
    assert res.model_spec["model"] == "shufflenetv2"
    assert res.model_spec["model_args"]["ops"] == res.metrics["child_ops"]
    assert set(res.metrics["stages"]) == {"search", "train"}
    arch = files[0]["architecture.json"]
    assert len(arch["alpha_probs"]) == 2 and len(arch["chosen"]) == net.num_layers
    assert runs[1].metrics["accuracy"] == res.metrics["accuracy"]
    assert files[1]["architecture.json"]["alpha_probs"] == arch["alpha_probs"]


@pytest.mark.slow
def test_killed_search_resumes_across_the_child_derivation(tmp_path):
    ds = tiny_dataset()
    part = partition(ds, num_clients=3)
    opts = dict(client_state="optimizer", fix_threshold=0.01)
    full = run_federated(_tiny_method(ds, **opts), ds, part, seed=2, settings=CPU, **QUIET)
    ckpt = tmp_path / "ckpt.pt"
    for stop in (1, 2):  # stop mid-search, then right after the child is derived
        run_federated(
            _tiny_method(ds, **opts),
            ds,
            part,
            seed=2,
            settings=CPU,
            checkpoint=CheckpointFile(ckpt, "f"),
            stop_after=stop,
            **QUIET,
        )
    resumed = run_federated(
        _tiny_method(ds, **opts),
        ds,
        part,
        seed=2,
        settings=CPU,
        checkpoint=CheckpointFile(ckpt, "f"),
        **QUIET,
    )
    assert resumed.metrics["child_ops"] == full.metrics["child_ops"]
    assert resumed.metrics["accuracy"] == full.metrics["accuracy"]
    assert resumed.metrics["train_flops"] == full.metrics["train_flops"]


def test_the_search_takes_a_quarter_of_the_rounds_by_default():
    """The default set from the recipe runs on two datasets (docs/verdict.md): a quarter,
    and never fewer rounds than the warm-up needs to leave one for alpha."""
    ds = tiny_dataset()
    for rounds, warmup, expected in ((12, 1, 3), (60, 3, 15), (4, 1, 2), (2, 1, 2)):
        method = _tiny_method(
            ds, search_rounds=None, warmup_rounds=warmup, train={"rounds": rounds}
        )
        assert method.search_rounds == expected, (rounds, warmup)


def test_bad_options_are_config_errors():
    ds = tiny_dataset()
    with pytest.raises(ConfigError, match="search_rounds"):
        _tiny_method(ds, search_rounds=9)
    with pytest.raises(ConfigError, match="search_rounds"):
        _tiny_method(ds, search_rounds=0)
    with pytest.raises(ConfigError, match="budget_latency_ms: a latency budget needs a latency"):
        _tiny_method(ds, budget_latency_ms=1.0)
    with pytest.raises(ConfigError, match="options.colour: unknown option"):
        _tiny_method(ds, colour=1)
