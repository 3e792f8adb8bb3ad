"""Client-parallel rounds: a round's clients trained in forked worker processes give the
same run, tensor by tensor, as the same clients trained one after another at the same
threads per client. Covered for every registered method (its own hooks run in the
workers), with dropouts, DFNAS's per-client path plans and its switch to the child."""

from __future__ import annotations

import pytest
import torch
from helpers import make_method, partition, small_method, tiny_dataset

from dfnas.errors import ConfigError
from dfnas.federated.clients import ClientWorkerError
from dfnas.federated.loop import run_federated
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS

TIMING = {"round_seconds", "client_seconds", "client_cpu_seconds", "peak_memory_bytes"}


def _run(name: str, workers: int, threads: int):
    ds = tiny_dataset()
    method = small_method(
        ds,
        name,
        rounds=3 if name == "dfnas" else 2,  # DFNAS: 2 search rounds, then its child
        local_steps=2,
        batch_size=8,
        clients_per_round=4,
        dropout=0.2,
        personalize_epochs=1,
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return run_federated(
            method,
            ds,
            partition(ds, 5),
            seed=1,
            settings=RunSettings(device="cpu", client_workers=workers),
            log=lambda *_: None,
        )
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", METHODS.names())
def test_forked_clients_equal_sequential_ones(name):
    one = _run(name, workers=1, threads=1)
    # 2 workers of 1 thread each (the parent keeps 1 thread: on a busy CI machine, a
    # 2-thread OpenMP pool beside other work slows severalfold, and the result is the same)
    two = _run(name, workers=2, threads=1)
    assert sum(h["clients_replied"] for h in one.history) > 3  # the workers had clients
    for a, b in zip(one.history, two.history, strict=True):
        assert {k: v for k, v in a.items() if k not in TIMING} == {
            k: v for k, v in b.items() if k not in TIMING
        }
    sa, sb = one.model.state_dict(), two.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    skip = TIMING | {"wall_seconds", "personalize_seconds", "stages", "client_workers"}
    ma = {k: v for k, v in one.metrics.items() if k not in skip}
    mb = {k: v for k, v in two.metrics.items() if k not in skip}
    assert ma == mb
    for stage, costs in one.metrics["stages"].items():  # per stage, all but the clocks
        other = two.metrics["stages"][stage]
        assert {k: v for k, v in costs.items() if k not in TIMING} == {
            k: v for k, v in other.items() if k not in TIMING
        }
    assert two.metrics["client_workers"] == 2
    # client seconds stay per client: the sum of the clients' own clocks, not the round's
    assert all(h["client_seconds"] > 0 for h in two.history)


def test_a_failing_client_names_its_round():
    ds = tiny_dataset()
    method = make_method(ds, rounds=1, local_steps=1, batch_size=8)

    def boom(*args, **kwargs):
        raise ValueError("client exploded")

    method.train_step = boom
    with pytest.raises(ClientWorkerError, match=r"^a client worker failed in round 1: ValueError: "
                       "client exploded") as info:  # fmt: skip
        run_federated(
            method,
            ds,
            partition(ds, 3),
            0,
            settings=RunSettings(device="cpu", client_workers=2),
            log=lambda *_: 0,
        )
    assert "\n" not in str(info.value)


def test_workers_must_be_positive():
    ds = tiny_dataset()
    method = make_method(ds, rounds=1, local_steps=1)
    with pytest.raises(ConfigError, match="client_workers"):
        run_federated(
            method, ds, partition(ds, 3), 0, settings=RunSettings(device="cpu", client_workers=0)
        )


def test_a_killed_worker_is_one_line_naming_its_round():
    """A worker that dies without a word (SIGKILL, out of memory) ends the run in one line."""
    import os

    ds = tiny_dataset()
    method = make_method(ds, rounds=1, local_steps=1, batch_size=8)

    def die(*args, **kwargs):
        os._exit(9)

    method.train_step = die
    with pytest.raises(ClientWorkerError, match=r"^a client worker process died \(exit code 9\) "
                       r"in round 1") as info:  # fmt: skip
        run_federated(
            method,
            ds,
            partition(ds, 3),
            0,
            settings=RunSettings(device="cpu", client_workers=2),
            log=lambda *_: 0,
        )
    assert "\n" not in str(info.value)
