"""DFNAS's path-only communication: a client receives and returns only the ops of the
paths it drew before downloading; the server's mean covers, per entry, the clients that
sent it, and leaves an op nobody trained as it was."""

from __future__ import annotations

import torch
from helpers import CPU, make_method, partition, tiny_dataset

from dfnas.cost import tensor_bytes
from dfnas.federated.aggregation import StreamingMean
from dfnas.federated.checkpoint import CheckpointFile
from dfnas.federated.context import StepContext
from dfnas.federated.data import DeviceData
from dfnas.federated.loop import run_federated
from dfnas.federated.sampling import client_seed

SPACE = {"stem": 8, "stages": [[2, 16], [2, 32]], "last": 32}


def dfnas(ds, **options):
    options = {"search_rounds": 2, "warmup_rounds": 0} | options
    return make_method(
        ds, "dfnas", "shufflenetv2", model_args=SPACE, options=options, rounds=3,
        local_steps=2, batch_size=8,
    )  # fmt: skip


def test_a_mean_over_the_clients_that_sent_each_entry():
    agg = StreamingMean()
    agg.add({"a": torch.tensor([1.0]), "b": torch.tensor([10.0])}, 1)
    agg.add({"a": torch.tensor([4.0])}, 2)
    out = agg.result()
    assert out["a"].item() == 3.0 and out["b"].item() == 10.0


def test_count_batches_matches_the_batches_drawn():
    ds = tiny_dataset()
    data = DeviceData.from_dataset(ds, torch.device("cpu"), "none", channels_last=False)
    for n in (1, 2, 9, 16, 17):
        for batch, epochs, steps in ((8, 1, None), (8, 2, None), (16, 1, None), (4, 1, 3)):
            idx = torch.arange(n)
            drawn = len(list(data.batches(idx, batch, torch.Generator(), epochs, steps)))
            assert DeviceData.count_batches(n, batch, epochs, steps) == drawn, (n, batch)


def test_a_client_gets_only_its_paths_and_returns_what_it_trained():
    ds = tiny_dataset()
    method = dfnas(ds, communication="paths", client_paths=1)
    net = method.build_model()
    ctx = StepContext(round=0, client=3, generator=torch.Generator().manual_seed(1), steps=2)
    down = method.download(net, ctx)
    (path,) = {tuple(p) for p in ctx.plan["paths"]}  # one path, cycled over both steps
    full = method.payload(net)
    for i, op in enumerate(path):
        assert any(k.startswith(f"layers.{i}.ops.{op}.") for k in down)
        others = [k for k in down if k.startswith(f"layers.{i}.ops.") and f".ops.{op}." not in k]
        assert not others
    assert "alpha" in down and tensor_bytes(down) < 0.5 * tensor_bytes(full)
    assert set(method.upload(net, ctx)) == set(down)


def test_ops_no_client_trained_are_left_as_they_were(tmp_path):
    ds = tiny_dataset()
    part = partition(ds, 2)
    method = dfnas(ds, communication="paths", client_paths=1)
    torch.manual_seed(0)
    start = method.build_model()
    init = {k: v.clone() for k, v in start.state_dict().items()}
    # the two clients' round-1 paths, drawn as the loop draws them
    union: list[set[int]] = [set() for _ in range(start.num_layers)]
    for k in range(2):
        gen = torch.Generator().manual_seed(client_seed(0, 0, k))
        ctx = StepContext(round=0, client=k, generator=gen, steps=2)
        method.download(start, ctx)
        for i, op in enumerate(ctx.plan["paths"][0]):  # the plan lives in the client's context
            union[i].add(op)
    ckpt = tmp_path / "ckpt.pt"
    file = CheckpointFile(ckpt, "")
    run_federated(
        method, ds, part, seed=0, settings=CPU, checkpoint=file, stop_after=1, log=lambda *_: 0
    )
    after = torch.load(ckpt, weights_only=False)["model"]
    assert after["alpha"].ne(init["alpha"]).any()
    for i, trained in enumerate(union):
        for op in range(4):
            keys = [k for k in init if k.startswith(f"layers.{i}.ops.{op}.") and "weight" in k]
            moved = any(not torch.equal(after[k], init[k]) for k in keys)
            assert moved == (op in trained), (i, op, trained)
    full = 2 * tensor_bytes(dfnas(ds).payload(start))
    history = torch.load(ckpt, weights_only=False)["history"]
    assert history[0]["bytes_down"] < 0.6 * full
