"""Batched clients (``training.client_batching``, ``federated.batched``) against the
per-client loop, the reference: in float64 every round's state, loss and cost equal the
loop's to rounding (1e-10), on the verdict's network families, with unequal clients
(epochs of unequal length, short last batches), dropouts, momentum, weight decay and
gradient clipping. In float32 a batched run repeats itself bit for bit, and a method or
network the batched path cannot reproduce is refused in one line."""

from __future__ import annotations

import pytest
import torch
from helpers import CPU, make_method, partition, small_method, tiny_dataset

import dfnas.federated.batched as batched_module
from dfnas.errors import ConfigError
from dfnas.federated.data import DeviceData
from dfnas.federated.loop import run_federated

TIMING = {"round_seconds", "client_seconds", "client_cpu_seconds", "peak_memory_bytes"}
# the CNN, and a small ShuffleNetV2 of random ops (a random child of DFNAS's space; its
# choice blocks are those of the fixed network, of DFNAS's child and of its supernet paths)
SMALL_SHUFFLE = {"stem": 8, "stages": [[1, 16], [2, 32]], "last": 32}
NETWORKS = {
    "cnn": ("cnn", {}),
    "shufflenetv2": ("shufflenetv2", SMALL_SHUFFLE | {"ops": "random", "arch_seed": 1}),
}


def _run(model: str, args: dict, batching: bool, **train):
    ds = tiny_dataset(n=120)
    settings = dict(rounds=2, batch_size=8, lr=0.1, grad_clip=1.0, dropout=0.2)
    method = make_method(
        ds, model=model, model_args=args, client_batching=batching, **(settings | train)
    )
    # unequal clients: Dirichlet sizes, so epochs end at different steps
    part = partition(ds, 4, partitioner="dirichlet", alpha=0.5, seed=3)
    return run_federated(method, ds, part, seed=2, settings=CPU, log=lambda *_: None)


@pytest.fixture
def float64(monkeypatch):
    """The whole engine in float64: networks built in it, batches handed over in it."""
    prepare = DeviceData.prepare
    monkeypatch.setattr(DeviceData, "prepare", lambda self, *a: prepare(self, *a).double())
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("work", ["local_epochs", "local_steps"])
@pytest.mark.parametrize("net", NETWORKS)
def test_batched_clients_equal_the_loop_in_float64(float64, net, work, monkeypatch):
    rounds = []
    train = batched_module.train_batched
    monkeypatch.setattr(
        batched_module, "train_batched", lambda job, ks: rounds.append(ks) or train(job, ks)
    )
    loop = _run(*NETWORKS[net], batching=False, **{work: 2})
    assert not rounds
    batched = _run(*NETWORKS[net], batching=True, **{work: 2})
    assert len(rounds) == 2 and all(len(ks) > 1 for ks in rounds)  # it took the batched path
    assert next(loop.model.parameters()).dtype == torch.float64
    assert sum(h["clients_replied"] for h in loop.history) >= 4
    for a, b in zip(loop.history, batched.history, strict=True):
        for key in a.keys() - TIMING:
            if isinstance(a[key], float):
                assert b[key] == pytest.approx(a[key], rel=1e-10, abs=1e-12), key
            else:
                assert b[key] == a[key], key
    sa, sb = loop.model.state_dict(), batched.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.allclose(sb[key], sa[key], rtol=1e-10, atol=1e-12), key


def test_a_batched_run_repeats_itself_bit_for_bit():
    one = _run(*NETWORKS["shufflenetv2"], batching=True, local_steps=2)
    two = _run(*NETWORKS["shufflenetv2"], batching=True, local_steps=2)
    for key, value in one.model.state_dict().items():
        assert torch.equal(value, two.model.state_dict()[key]), key
    assert [h["train_loss"] for h in one.history] == [h["train_loss"] for h in two.history]


def test_batched_float32_stays_close_to_the_loop():
    """Not equal (grouped kernels sum in another order), but the same training."""
    loop = _run("cnn", {}, batching=False, local_steps=3)
    batched = _run("cnn", {}, batching=True, local_steps=3)
    for a, b in zip(loop.history, batched.history, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)


def test_a_method_with_its_own_client_round_is_refused():
    ds = tiny_dataset()
    method = small_method(ds, "dfnas", rounds=2, local_steps=1, client_batching=True)
    with pytest.raises(ConfigError, match=r"^training.client_batching: this method") as info:
        run_federated(method, ds, partition(ds, 2), seed=0, settings=CPU, log=lambda *_: None)
    assert "\n" not in str(info.value)


def test_a_network_drawing_random_numbers_is_refused():
    ds = tiny_dataset()
    method = make_method(
        ds,
        model="darts",
        model_args={"C": 4, "layers": 3, "drop_path": 0.2},
        rounds=1,
        local_steps=1,
        client_batching=True,
    )
    with pytest.raises(ConfigError, match="drop path"):
        run_federated(method, ds, partition(ds, 2), seed=0, settings=CPU, log=lambda *_: None)
