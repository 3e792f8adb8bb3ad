"""Faults end bitwise equal to an uninterrupted run or with one clear line, never with a
wrong number: a killed run of every method resumes to the same end (every tensor, every
non-timing history column) on 1- and 3-channel data; a checkpoint whose bytes changed is
refused and the run starts over; a planted checkpoint cannot run code; a diverging run
stops with the round and client named."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from helpers import partition, small_method, tiny_dataset

from dfnas.errors import TrainingError
from dfnas.federated.checkpoint import CheckpointFile, save_checkpoint
from dfnas.federated.loop import run_federated
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS

TIMING = {"round_seconds", "client_seconds", "client_cpu_seconds", "peak_memory_bytes"}


def _run(ds, name, ckpt=None, stop_after=None, log=None, workers=1, **train):
    train = dict(rounds=3, local_steps=2, batch_size=8, clients_per_round=3, dropout=0.2) | train
    return run_federated(
        small_method(ds, name, **train),
        ds,
        partition(ds, num_clients=4),
        seed=1,
        settings=RunSettings(device="cpu", client_workers=workers),
        checkpoint=CheckpointFile(ckpt, "x") if ckpt else None,
        stop_after=stop_after,
        log=log or (lambda *_: None),
        personalize_final=False,
    )


def _assert_same_end(a, b) -> None:
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    for ra, rb in zip(a.history, b.history, strict=True):
        for key in ra.keys() - TIMING:
            assert ra[key] == rb[key] or (ra[key] != ra[key] and rb[key] != rb[key]), key


# FedNAS at 3 channels only: its tiny search takes ~30 s a case, and its search network
# runs channels_last only from 3 channels on (the input's channels change nothing a
# checkpoint holds)
CASES = [(n, c) for n in METHODS.names() for c in (1, 3) if (n, c) != ("fednas", 1)]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "channels"), CASES)
def test_killed_run_of_every_method_resumes_bitwise(tmp_path, name, channels):
    ds = tiny_dataset(channels=channels)
    full = _run(ds, name)
    ckpt = tmp_path / "ckpt.pt"
    assert _run(ds, name, ckpt, stop_after=2) is None
    _assert_same_end(_run(ds, name, ckpt), full)


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS.names())
def test_killed_run_with_client_workers_resumes_bitwise(tmp_path, name):
    """Forked workers (1 thread each) train the clients; the resumed process forks new
    ones, and ends where the uninterrupted run ends."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ds = tiny_dataset(channels=3)
        full = _run(ds, name, workers=2)
        ckpt = tmp_path / "ckpt.pt"
        assert _run(ds, name, ckpt, stop_after=2, workers=2) is None
        _assert_same_end(_run(ds, name, ckpt, workers=2), full)
    finally:
        torch.set_num_threads(before)


def test_checkpoint_with_changed_bytes_is_refused_and_the_run_starts_over(tmp_path):
    ds = tiny_dataset()
    full = _run(ds, "fedavg")
    ckpt = tmp_path / "ckpt.pt"
    _run(ds, "fedavg", ckpt, stop_after=2)
    blob = bytearray(ckpt.read_bytes())
    middle = len(blob) // 2
    blob[middle : middle + 64] = bytes(b ^ 0xFF for b in blob[middle : middle + 64])
    ckpt.write_bytes(bytes(blob))
    lines: list[str] = []
    resumed = _run(ds, "fedavg", ckpt, log=lines.append)
    assert any("do not match ckpt.pt.sha256; starting over" in line for line in lines)
    assert not any(line.startswith("resuming") for line in lines)
    _assert_same_end(resumed, full)


class _Planted:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PLANTED').write_text('ran')",))


def test_planted_checkpoint_runs_no_code(tmp_path, monkeypatch):
    """Even with a digest that matches, a pickle that is not plain tensors is refused."""
    monkeypatch.chdir(tmp_path)
    ds = tiny_dataset()
    ckpt = tmp_path / "ckpt.pt"
    monkeypatch.setattr(torch, "save", lambda obj, f: pickle.dump(obj, f))
    save_checkpoint(ckpt, {"fingerprint": "x", "payload": _Planted()})
    monkeypatch.undo()
    lines: list[str] = []
    result = _run(ds, "fedavg", ckpt, log=lines.append)
    assert not (tmp_path / "PLANTED").exists()
    assert any("ignoring unreadable checkpoint" in line for line in lines)
    assert len(result.history) == 3


def test_diverging_run_stops_naming_round_and_client(tmp_path):
    ds = tiny_dataset()
    with pytest.raises(TrainingError, match=r"^round \d+, client \d+: training loss is") as info:
        _run(ds, "fedavg", tmp_path / "ckpt.pt", lr=1e6, rounds=6)
    assert "\n" not in str(info.value)


def test_non_finite_aggregate_is_caught_before_it_is_kept():
    from dfnas.federated.round_tally import check_finite_state

    check_finite_state({"w": torch.ones(2), "n": torch.tensor(3)}, 0)
    with pytest.raises(TrainingError, match=r"^round 4: the aggregated 'w' is not finite"):
        check_finite_state({"w": torch.tensor([1.0, math.inf])}, 3)


def test_json_results_are_strict(tmp_path):
    import json

    from dfnas.io import write_json

    write_json(tmp_path / "m.json", {"loss": math.nan, "curve": [1.0, math.inf]})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=pytest.fail) == {"loss": None, "curve": [1.0, None]}


@pytest.mark.parametrize("channels", [1, 3])
def test_layout_is_read_back_on_one_channel_inputs(channels):
    """A 1-channel stem's weight is contiguous in both layouts: the layout is read from a
    weight that tells them apart, so a derived child lands in its parent's layout."""
    from dfnas.federated.loop import _is_channels_last
    from dfnas.models import build_model

    net = build_model("cnn", (channels, 8, 8), 10)
    assert not _is_channels_last(net)
    assert _is_channels_last(net.to(memory_format=torch.channels_last))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_one_line():
    from dfnas.errors import ConfigError
    from dfnas.federated.loop import resolve_device

    with pytest.raises(ConfigError, match=r"^device: 'cuda' asked for, but .* sees no GPU"):
        resolve_device("cuda")


def test_metrics_say_where_they_came_from():
    ds = tiny_dataset()
    m = _run(ds, "fedavg", rounds=1).metrics
    for key in ("code_version", "torch_version", "torch_git", "cpu", "cpu_capability"):
        assert isinstance(m[key], str) and m[key], key
    assert m["onednn_max_cpu_isa"] and m["precision"] == "fp32"
    assert isinstance(m["channels_last"], bool) and m["threads"] >= 1


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KiB tmpfs (root only; skipped clearly elsewhere)."""
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], capture_output=True
    )
    if mount.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mount.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_full_disk_is_one_line_and_leaves_no_checkpoint(small_disk):
    from dfnas.errors import DfnasError
    from dfnas.federated.checkpoint import load_checkpoint

    ckpt = small_disk / "ckpt.pt"
    with pytest.raises(DfnasError, match=r"ckpt\.pt: no space left on the device") as info:
        save_checkpoint(ckpt, {"fingerprint": "x", "w": torch.zeros(1_000_000)})
    assert "\n" not in str(info.value)
    assert not ckpt.exists() and load_checkpoint(ckpt, "x") is None
