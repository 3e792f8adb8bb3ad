"""Client training memory (cost.memory): counted by hand on a small conv/linear net, a
DARTS search step against the same cell's one-path step, and through the loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from helpers import CPU, make_method, partition, tiny_dataset
from torch import nn

from dfnas.cost.memory import TrainingMemory
from dfnas.federated.loop import run_federated
from dfnas.models import build_model
from dfnas.search.milenas import milenas_step

F32 = 4


def test_counted_by_hand_on_a_conv_linear_net():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, bias=False)  # saves its input (and its weight: a parameter)
    lin = nn.Linear(2 * 4 * 4, 3)  # saves its input: relu's output, already held
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), lin)  # relu saves its output
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(5, 1, 6, 6)
    meter = TrainingMemory()
    for _ in range(2):  # momentum exists from the first step on
        with meter.step(net, opt):
            opt.zero_grad(set_to_none=True)
            net(x).sum().backward()  # sum saves no tensor
            opt.step()
    params = (2 * 1 * 3 * 3 + 32 * 3 + 3) * F32
    assert meter.parts == {
        "params": params,
        "grads": params,
        "optimizer": params,  # one momentum buffer per parameter
        "activations": x.numel() * F32 + 5 * 2 * 4 * 4 * F32,  # x, relu output
    }
    assert meter.peak_bytes == sum(meter.parts.values())


def test_a_milenas_step_holds_more_than_the_same_cells_one_path_step():
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    search = build_model("darts_search", (3, 16, 16), 10, C=4, layers=3)
    weights = torch.optim.SGD(search.weight_parameters(), lr=0.01, momentum=0.9)
    alpha = torch.optim.Adam(search.arch_parameters(), lr=3e-4)
    mixed = TrainingMemory()
    with mixed.step(search, [weights, alpha]):
        milenas_step(search, x, y, x, y, weights, alpha, 1.0, 5.0)
    child = build_model("darts", (3, 16, 16), 10, C=4, layers=3)
    sgd = torch.optim.SGD(child.parameters(), lr=0.01, momentum=0.9)
    one = TrainingMemory()
    with one.step(child, sgd):
        sgd.zero_grad(set_to_none=True)
        F.cross_entropy(child(x), y).backward()
        sgd.step()
    # all eight ops of every mixed edge keep their outputs for backward
    assert mixed.parts["activations"] > 5 * one.parts["activations"]
    # momentum on every weight, Adam's two moments on alpha
    w_bytes = sum(p.numel() for p in search.weight_parameters()) * F32
    a_bytes = sum(p.numel() for p in search.arch_parameters()) * F32
    assert mixed.parts["optimizer"] == w_bytes + 2 * a_bytes + 4 * len(search.arch_parameters())


def test_the_loop_reports_client_memory_apart_from_the_process():
    ds = tiny_dataset()
    method = make_method(ds, rounds=2, local_steps=2)
    result = run_federated(method, ds, partition(ds, 2), seed=0, settings=CPU, log=lambda *_: 0)
    client = result.metrics["client_memory_bytes"]
    assert 0 < client < result.metrics["peak_memory_bytes"] / 10
    assert all(h["client_memory_bytes"] > 0 for h in result.history)
