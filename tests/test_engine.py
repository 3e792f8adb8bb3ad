"""The federated loop: FedAvg's exactness, resumption, determinism, faults, accounting."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import CPU, make_method, partition, tiny_dataset
from torch import nn

from dfnas.cost import forward_flops, tensor_bytes, train_flops
from dfnas.federated.aggregation import StreamingMean, weighted_mean
from dfnas.federated.checkpoint import CheckpointFile
from dfnas.federated.config import TrainConfig
from dfnas.federated.data import DeviceData, index_tensor
from dfnas.federated.loop import run_federated
from dfnas.federated.sampling import sample_clients, surviving_clients

QUIET = {"log": lambda *_: None}


def test_weighted_mean_by_hand():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 8.0]), "n": torch.tensor(5)}
    out = weighted_mean([a, b], [1, 3])
    assert torch.allclose(out["w"], torch.tensor([3.25, 6.5]))
    assert out["n"].item() == 5 and out["w"].dtype == torch.float32
    with pytest.raises(ValueError):
        StreamingMean().result()


def test_sampling_is_seeded_and_shared():
    a = sample_clients(100, 10, seed=3, round_=7)
    assert a == sample_clients(100, 10, seed=3, round_=7)
    assert len(set(a)) == 10 and a != sample_clients(100, 10, seed=3, round_=8)
    assert sample_clients(5, 10, seed=0, round_=0) == [0, 1, 2, 3, 4]
    kept = surviving_clients(list(range(1000)), 0.3, seed=0, round_=0)
    assert 600 < len(kept) < 800
    assert surviving_clients([1, 2], 0.0, 0, 0) == [1, 2]


def test_fedavg_full_batch_equals_centralized_step():
    """One full-batch gradient step per client, full participation, no momentum: the
    n_k-weighted mean of client models is one gradient step on the union of their data."""
    ds = tiny_dataset(n=160)
    part = partition(ds, num_clients=4, partitioner="dirichlet", alpha=0.5, local_test_fraction=0)
    lr = 0.1
    method = make_method(
        ds,
        rounds=1,
        local_steps=1,
        batch_size=1000,
        lr=lr,
        lr_schedule="constant",
        momentum=0.0,
        weight_decay=0.0,
        augment="none",
        channels_last=False,
    )
    torch.manual_seed(0)
    start = method.build_model()
    fed = run_federated(method, ds, part, seed=0, settings=CPU, **QUIET).model

    central = copy.deepcopy(start)
    data = DeviceData.from_dataset(ds, torch.device("cpu"), "none", channels_last=False)
    idx = index_tensor(np.concatenate(part.train), torch.device("cpu"))
    loss = F.cross_entropy(central(data.prepare(data.x_train[idx])), data.y_train[idx])
    loss.backward()
    with torch.no_grad():
        for p in central.parameters():
            p -= lr * p.grad
    for (name, a), b in zip(central.state_dict().items(), fed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    assert not torch.allclose(start.state_dict()["classifier.3.bias"], fed.classifier[3].bias)


@pytest.mark.parametrize("model", ["cnn", "resnet20"])
def test_killed_run_resumes_to_the_same_end(tmp_path, model):
    ds = tiny_dataset()
    part = partition(ds, num_clients=5)
    train = dict(
        rounds=4,
        local_epochs=1,
        batch_size=16,
        clients_per_round=3,
        dropout=0.2,
        personalize_epochs=1,
    )
    args = dict(model_args={"width": 4} if model == "resnet20" else {"width": 8, "hidden": 16})
    full = run_federated(
        make_method(ds, model=model, **args, **train),
        ds,
        part,
        seed=1,
        settings=CPU,
        **QUIET,
    )
    ckpt = tmp_path / "ckpt.pt"
    stopped = run_federated(
        make_method(ds, model=model, **args, **train),
        ds,
        part,
        seed=1,
        settings=CPU,
        checkpoint=CheckpointFile(ckpt, "x"),
        stop_after=2,
        **QUIET,
    )
    assert stopped is None and ckpt.exists()
    resumed = run_federated(
        make_method(ds, model=model, **args, **train),
        ds,
        part,
        seed=1,
        settings=CPU,
        checkpoint=CheckpointFile(ckpt, "x"),
        **QUIET,
    )
    assert resumed.metrics["accuracy"] == full.metrics["accuracy"]
    assert resumed.metrics["loss"] == full.metrics["loss"]
    assert resumed.metrics["train_flops"] == full.metrics["train_flops"]
    assert resumed.metrics["bytes_up"] == full.metrics["bytes_up"]
    assert (
        resumed.metrics["personalized_accuracy_mean"] == full.metrics["personalized_accuracy_mean"]
    )
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    for a, b in zip(
        resumed.model.state_dict().values(), full.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_checkpoint_of_other_settings_is_ignored(tmp_path):
    ds = tiny_dataset()
    part = partition(ds)
    ckpt = tmp_path / "ckpt.pt"
    run_federated(
        make_method(ds, rounds=3),
        ds,
        part,
        seed=0,
        settings=CPU,
        checkpoint=CheckpointFile(ckpt, "a"),
        stop_after=1,
        **QUIET,
    )
    lines: list[str] = []
    res = run_federated(
        make_method(ds, rounds=3),
        ds,
        part,
        seed=0,
        settings=CPU,
        checkpoint=CheckpointFile(ckpt, "b"),
        log=lines.append,
    )
    assert len(res.history) == 3 and any("other settings" in line for line in lines)


def test_same_seed_same_result_other_seed_differs():
    ds = tiny_dataset()
    part = partition(ds)
    runs = [
        run_federated(make_method(ds, rounds=2), ds, part, seed=s, settings=CPU, **QUIET)
        for s in (0, 0, 1)
    ]
    assert runs[0].history[-1]["train_loss"] == runs[1].history[-1]["train_loss"]
    assert runs[0].history[-1]["train_loss"] != runs[2].history[-1]["train_loss"]


def test_dropout_survives_a_round_where_everyone_fails():
    ds = tiny_dataset()
    part = partition(ds, num_clients=2)
    res = run_federated(
        make_method(ds, rounds=6, dropout=0.9),
        ds,
        part,
        seed=0,
        settings=CPU,
        **QUIET,
    )
    replied = [h["clients_replied"] for h in res.history]
    assert 0 in replied and len(res.history) == 6
    assert all(h["bytes_down"] > 0 for h in res.history)
    for h in res.history:
        if h["clients_replied"] == 0:
            assert h["bytes_up"] == 0 and h["train_flops"] == 0


def test_cross_device_sampling_and_local_steps():
    ds = tiny_dataset()
    part = partition(ds, num_clients=8)
    res = run_federated(
        make_method(ds, rounds=2, client_fraction=0.25, local_steps=3, batch_size=4),
        ds,
        part,
        seed=0,
        settings=CPU,
        **QUIET,
    )
    assert [h["clients_sampled"] for h in res.history] == [2, 2]
    assert [h["samples"] for h in res.history] == [24, 24]


def test_bytes_are_four_per_fp32_element():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 2))
    state = model.state_dict()
    floats = sum(t.numel() for t in state.values() if t.dtype == torch.float32)
    assert tensor_bytes(state) == 4 * floats + 8  # + BN's int64 num_batches_tracked
    assert floats == (27 + 3) + (3 + 3 + 3 + 3) + (24 + 2)


def test_round_bytes_match_state_size():
    ds = tiny_dataset()
    part = partition(ds, num_clients=3)
    method = make_method(ds, rounds=1)
    res = run_federated(method, ds, part, seed=0, settings=CPU, **QUIET)
    size = tensor_bytes(res.model.state_dict())
    assert res.history[0]["bytes_down"] == 3 * size == res.history[0]["bytes_up"]


def test_flops_equal_a_hand_count():
    # conv 1->4, 3x3, 'valid' on 6x6 -> 4x4 outputs; then linear 64 -> 5
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.Flatten(), nn.Linear(64, 5, bias=False)
    )
    conv_macs = 4 * 4 * 4 * (1 * 3 * 3)
    lin_macs = 64 * 5
    fwd = 2 * (conv_macs + lin_macs)
    assert forward_flops(model, (1, 6, 6)) == fwd
    # backward: weight grads of both layers, input grad of the linear only (the conv's
    # input is data, which needs no gradient)
    bwd = 2 * conv_macs + 2 * (2 * lin_macs)
    assert train_flops(model, (1, 6, 6)) == fwd + bwd


def test_lr_schedule():
    cfg = TrainConfig(rounds=4, lr=0.1, lr_min=0.0)
    lrs = [cfg.lr_at(r) for r in range(4)]
    assert lrs[0] == pytest.approx(0.1) and lrs[-1] > 0 and lrs == sorted(lrs, reverse=True)
    assert TrainConfig(lr_schedule="constant").lr_at(9) == 0.05


def test_depthwise_conv_flops_equal_a_hand_count():
    """torch's counter charges a grouped conv's weight gradient as if it were dense; ours
    charges each of input gradient and weight gradient what the forward costs."""
    from dfnas.search.shufflenet_supernet import _input_grad_loss

    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    fwd = 2 * (8 * 6 * 6) * (1 * 3 * 3)  # 8 channels x 36 outputs x one 3x3 filter each
    assert forward_flops(model, (8, 6, 6)) == fwd
    assert train_flops(model, (8, 6, 6), loss_fn=_input_grad_loss) == 3 * fwd
