"""FedNAS: genotype derivation, mixed ops, the MiLeNAS gradient, the genotype hand-over."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import CPU, make_method, partition, tiny_dataset

from dfnas.federated.context import StepContext
from dfnas.federated.loop import _split_validation, run_federated
from dfnas.methods import METHODS
from dfnas.models import build_model
from dfnas.models.darts_ops import PRIMITIVES, SepConv, Zero
from dfnas.results import combine_stages
from dfnas.search.darts_supernet import NUM_EDGES, DartsSearchNet, MixedOp, derive_genotype
from dfnas.search.milenas import milenas_alpha_grads, milenas_step_one_train_pass

QUIET = {"log": lambda *_: None}


def test_genotype_from_hand_made_alphas():
    alpha = torch.zeros(NUM_EDGES, len(PRIMITIVES))
    none, sep3, skip = (PRIMITIVES.index(p) for p in ("none", "sep_conv_3x3", "skip_connect"))
    alpha[:, none] = 10.0  # 'none' is the strongest everywhere, and must never be picked
    # node 0 has edges 0, 1; node 1 edges 2-4; node 2 edges 5-8; node 3 edges 9-13
    alpha[0, sep3] = 5.0
    alpha[1, skip] = 4.0
    alpha[3, sep3] = 3.0  # node 1: edges from inputs 1 and 2 win
    alpha[4, skip] = 2.0
    alpha[2, skip] = 1.0
    geno = derive_genotype(alpha, alpha)
    assert geno["normal"][:4] == [["sep_conv_3x3", 0], ["skip_connect", 1],
                                  ["sep_conv_3x3", 1], ["skip_connect", 2]]  # fmt: skip
    assert all(op != "none" for op, _ in geno["normal"] + geno["reduce"])
    assert len(geno["normal"]) == 8 and geno["normal_concat"] == [2, 3, 4, 5]


def test_mixed_op_is_the_weighted_sum_of_its_ops():
    op = MixedOp(4, 1).eval()
    x = torch.randn(2, 4, 6, 6)
    w = F.softmax(torch.randn(len(PRIMITIVES)), dim=0)
    expected = sum(wi * o(x) for wi, o in zip(w, op.ops, strict=True))
    assert torch.allclose(op(x, w), expected)
    assert isinstance(op.ops[0], Zero) and isinstance(op.ops[4], SepConv)


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_shortcuts_keep_every_gradient(stride):
    """The shared opening ReLU and the skipped 'none' change no value and no gradient:
    the mixed edge against the naive sum over all eight ops, in training mode."""
    torch.manual_seed(0)
    op = MixedOp(4, stride).train()
    x = torch.randn(3, 4, 8, 8, requires_grad=True)
    alpha = torch.randn(len(PRIMITIVES), requires_grad=True)
    g = torch.randn(3, 4, 8 // stride, 8 // stride)

    def grads(module, forward):
        x.grad = alpha.grad = None
        (forward(x, F.softmax(alpha, 0)) * g).sum().backward()
        return [x.grad.clone(), alpha.grad.clone(), *(p.grad for p in module.parameters())]

    twin = copy.deepcopy(op)
    fast = grads(op, op)
    naive = grads(twin, lambda x, w: sum(wi * o(x) for wi, o in zip(w, twin.ops, strict=True)))
    for a, b in zip(fast, naive, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # the fused norms update their running statistics as nn.BatchNorm2d does
    for (name, a), (_, b) in zip(op.named_buffers(), twin.named_buffers(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-7), name


def test_one_train_pass_takes_both_gradients_at_the_current_alpha():
    torch.manual_seed(0)
    net = DartsSearchNet((1, 8, 8), 3, C=4, layers=3)
    x_tr, y_tr = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    x_val, y_val = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    w0 = [p.detach().clone() for p in net.weight_parameters()]
    a0 = [a.detach().clone() for a in net.arch_parameters()]
    g_alpha = milenas_alpha_grads(net, x_tr, y_tr, x_val, y_val, 0.5)
    net.zero_grad()
    F.cross_entropy(net(x_tr), y_tr).backward()
    g_w = [p.grad.clone() for p in net.weight_parameters()]
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.1)
    a_opt = torch.optim.SGD(net.arch_parameters(), lr=0.1)
    milenas_step_one_train_pass(net, x_tr, y_tr, x_val, y_val, w_opt, a_opt, 0.5, None)
    for a, a_before, g in zip(net.arch_parameters(), a0, g_alpha, strict=True):
        assert torch.allclose(a, a_before - 0.1 * g, atol=1e-6)
    for p, p_before, g in zip(net.weight_parameters(), w0, g_w, strict=True):
        assert torch.allclose(p, p_before - 0.1 * g, atol=1e-6)


def test_milenas_alpha_gradient_is_val_plus_lambda_train():
    torch.manual_seed(0)
    net = DartsSearchNet((1, 8, 8), 3, C=4, layers=3)
    x_tr, y_tr = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    x_val, y_val = torch.randn(4, 1, 8, 8), torch.randint(0, 3, (4,))
    lam = 0.7
    grads = milenas_alpha_grads(net, x_tr, y_tr, x_val, y_val, lam)

    def alpha_grads(x, y):
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        return [a.grad.clone() for a in net.arch_parameters()]

    g_val, g_tr = alpha_grads(x_val, y_val), alpha_grads(x_tr, y_tr)
    for g, gv, gt in zip(grads, g_val, g_tr, strict=True):
        assert torch.allclose(g, gv + lam * gt, atol=1e-7)


def test_validation_split_is_carved_from_train_only():
    ds = tiny_dataset()
    part = partition(ds, num_clients=3, local_test_fraction=0.2)
    train, val = _split_validation(part, 0.5, torch.device("cpu"))
    for k in range(3):
        tr, va = set(train[k].tolist()), set(val[k].tolist())
        assert not tr & va and tr | va == set(part.train[k].tolist())
        assert not va & set(part.test[k].tolist())
        assert abs(len(va) - len(part.train[k]) / 2) <= 1


def test_search_stage_writes_a_genotype_and_counts_three_passes():
    ds = tiny_dataset()
    part = partition(ds, num_clients=2)
    method = make_method(ds, "fednas", "darts_search", model_args={"C": 4, "layers": 3},
                         rounds=2, batch_size=16)  # fmt: skip
    run_federated(method, ds, part, seed=0, settings=CPU, **QUIET)
    files = METHODS.get("fednas").files(method)  # what the search stage writes
    geno = files["genotype.json"]
    assert set(geno) == {"normal", "normal_concat", "reduce", "reduce_concat"}
    assert len(files["alphas.json"]) == 2
    # a MiLeNAS step costs more than the two training passes of plain SGD on the same net
    plain = make_method(ds, "fedavg", "darts_search", model_args={"C": 4, "layers": 3})
    net = method.build_model()
    ctx = StepContext(round=0, client=0, generator=torch.Generator())
    assert method.step_flops(net, 1, ctx) > 1.5 * plain.step_flops(net, 1, ctx)


def test_train_stage_builds_exactly_the_genotype(tmp_path):
    from dfnas.run import run_method

    ds = tiny_dataset()
    ds.save(tmp_path / "data.npz")
    from dfnas.partition.stage import write_partition

    write_partition(ds, {"partitioner": "iid", "num_clients": 2}, tmp_path / "p")
    geno = {
        "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_5x5", 0],
                   ["max_pool_3x3", 2], ["avg_pool_3x3", 1], ["sep_conv_5x5", 3],
                   ["dil_conv_3x3", 0], ["skip_connect", 4]],
        "normal_concat": [2, 3, 4, 5],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2],
                   ["max_pool_3x3", 0], ["skip_connect", 2], ["sep_conv_3x3", 1],
                   ["skip_connect", 2], ["avg_pool_3x3", 0]],
        "reduce_concat": [2, 3, 4, 5],
    }  # fmt: skip
    search_dir = tmp_path / "search"  # what the search stage hands over, by hand
    search_dir.mkdir()
    (search_dir / "genotype.json").write_text(json.dumps(geno))
    search = {k: 1 for k in ("train_flops", "bytes_down", "bytes_up", "wall_seconds",
                             "client_seconds", "client_cpu_seconds", "rounds",
                             "peak_memory_bytes")}  # fmt: skip
    search |= {"stage": "search", "stages": {"search": {"train_flops": 1, "rounds": 1}}}
    (search_dir / "metrics.json").write_text(json.dumps(search))
    spec = {"method": "fednas", "model": "darts", "model_args": {"C": 4, "layers": 3},
            "training": {"rounds": 1, "personalize_epochs": 0}}  # fmt: skip
    out = tmp_path / "results" / "exp" / "runs" / "d" / "p" / "fednas" / "seed0"
    metrics = run_method(spec, tmp_path / "data.npz", tmp_path / "p" / "partition.json", 0, out,
                         name="fednas", stage="train", prior=search_dir)  # fmt: skip
    # config.json says where the run came from: experiment, code, torch, machine, layout
    provenance = json.loads((out / "config.json").read_text())["provenance"]
    assert provenance["experiment"] == "exp"
    for key in ("code_version", "torch_version", "cpu", "cpu_capability", "precision"):
        assert provenance[key] == metrics[key], key
    spec_back = json.loads((out / "model.json").read_text())
    assert spec_back["model_args"]["genotype"] == geno
    net = build_model("darts", (1, 8, 8), 4, **spec_back["model_args"])
    net.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    normal = net.cells[0]
    assert [type(op).__name__ for op in normal.ops][:4] == [
        "SepConv",
        "Identity",
        "DilConv",
        "MaxPool2d",
    ]
    assert normal.inputs == [j for _, j in geno["normal"]]
    assert metrics["stages"]["search"]["train_flops"] == 1
    assert metrics["train_flops"] == 1 + metrics["stages"]["train"]["train_flops"]
    assert metrics["rounds"] == 2
    assert (metrics["method"], metrics["run"], metrics["prior_stages"]) == (
        "fednas",
        "fednas",
        ["search"],
    )


def test_combine_stages_sums_costs():
    keys = ("train_flops", "bytes_down", "bytes_up", "wall_seconds", "client_seconds",
            "client_cpu_seconds", "rounds")  # fmt: skip
    a = {k: 2 for k in keys} | {"peak_memory_bytes": 5, "stage": "search"}
    a["stages"] = {"search": {"rounds": 2, "train_flops": 2}}
    b = {k: 3 for k in keys} | {"peak_memory_bytes": 4, "accuracy": 0.5, "stage": "train"}
    b["stages"] = {"train": {"rounds": 3, "train_flops": 3}}
    out = combine_stages(a, b)
    assert all(out[k] == 5 for k in keys) and out["peak_memory_bytes"] == 5
    assert out["accuracy"] == 0.5 and out["stages"]["search"]["rounds"] == 2
    assert out["stages"]["train"]["rounds"] == 3 and out["prior_stages"] == ["search"]


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_search_net_runs_on_every_input_size(shape):
    net = DartsSearchNet(shape, 10, C=4, layers=3)
    net(torch.randn(2, *shape)).sum().backward()
    assert np.isfinite(net.alphas_normal.grad.numpy()).all()
