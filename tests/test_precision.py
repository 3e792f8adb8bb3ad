"""training.precision: bf16 autocast of client forward passes. fp32 leaves the network
untouched; bf16 casts only the forward (outputs and weight gradients stay fp32, close to
fp32's), leaves nothing behind on the network, and trains every registered method."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import CPU, partition, small_method, tiny_dataset

from dfnas.errors import ConfigError
from dfnas.federated.config import TrainConfig
from dfnas.federated.loop import run_federated
from dfnas.federated.precision import autocast_forward
from dfnas.methods import METHODS
from dfnas.models import build_model


def _net_and_batch():
    torch.manual_seed(0)
    net = build_model("cnn", (3, 16, 16), 10)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    return net, x, y


def test_fp32_leaves_the_forward_alone():
    net, x, _ = _net_and_batch()
    plain = net(x)
    with autocast_forward(net, "fp32"):
        assert not net._forward_hooks and not net._forward_pre_hooks
        assert torch.equal(net(x), plain)


def test_bf16_casts_the_forward_only_and_restores_the_network():
    net, x, y = _net_and_batch()
    plain = net(x)
    F.cross_entropy(plain, y).backward()
    ref = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    keys = list(net.state_dict())
    with autocast_forward(net, "bf16"):
        out = net(x)
        assert out.dtype == torch.float32  # the loss is fp32 whatever the method
        F.cross_entropy(out, y).backward()
    assert not net._forward_hooks and not net._forward_pre_hooks
    assert list(net.state_dict()) == keys and torch.equal(net(x), plain)
    assert not torch.is_autocast_enabled("cpu")
    for p, g in zip(net.parameters(), ref, strict=True):
        assert p.dtype == p.grad.dtype == torch.float32
        assert not torch.equal(p.grad, g)  # bf16 did run
        assert F.cosine_similarity(p.grad.flatten(), g.flatten(), dim=0) > 0.98


def test_unknown_precision_is_refused_by_name():
    with pytest.raises(ConfigError, match="training.precision: expected one of fp32, bf16"):
        TrainConfig.from_dict({"precision": "fp16"})


def _run(name: str, precision: str):
    ds = tiny_dataset()
    method = small_method(
        ds,
        name,
        rounds=3 if name == "dfnas" else 2,  # DFNAS's search takes 2, its child the third
        local_steps=1,
        batch_size=8,
        personalize_epochs=1,
        precision=precision,
    )
    return run_federated(method, ds, partition(ds, 3), seed=0, settings=CPU, log=lambda *_: None)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_trains_in_bf16(name):
    fp32, bf16 = _run(name, "fp32"), _run(name, "bf16")
    losses = [h["train_loss"] for h in bf16.history]
    assert all(math.isfinite(v) for v in losses)
    a, b = fp32.model.state_dict(), bf16.model.state_dict()
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the precision took effect
    assert all(b[k].dtype == a[k].dtype for k in a)  # the server keeps fp32 weights
    for h32, h16 in zip(fp32.history, bf16.history, strict=True):
        assert abs(h32["train_loss"] - h16["train_loss"]) < 0.5
