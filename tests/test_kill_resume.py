"""kill -9 of a real `dfnas run` process after a round, then a rerun: the run ends with
the same model tensors and the same history (all but the clocks) as a run never killed.

Every registered method with client workers (``client_workers: 2``, killed while they
train), and without them every method but FedNAS: a checkpoint holds what the loop keeps
plus the method's ``server_state``, whatever the method, and FedNAS's search costs about a
minute of CI a case, so it is killed once, where the most can go wrong (its resume without
workers is tested bitwise in tests/test_faults.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import SMALL, tiny_dataset

from conftest import REPO
from dfnas.methods import METHODS
from dfnas.partition.stage import write_partition

TIMING = {"round_seconds", "client_seconds", "client_cpu_seconds", "peak_memory_bytes"}
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _run_cmd(name: str, data, part, out, workers: int = 1) -> list[str]:
    method = METHODS.get(name)
    small = SMALL.get(name, {})
    spec = {
        "method": name,
        "model": method.default_model,
        "model_args": small.get("model_args", {}),
        "options": small.get("options", {}),
        # FedNAS's search is the slowest step: two rounds still kill it in round 2's
        # training and resume it from round 1's checkpoint
        "training": {
            "rounds": 2 if name == "fednas" else 3,
            "local_steps": 2,
            "batch_size": 8,
            "personalize_epochs": 0,
        },
    }
    return [sys.executable, "-m", "dfnas", "run", "--spec", json.dumps(spec), "--name", name,
            "--data", str(data), "--partition", str(part), "--seed", "1", "--threads", "1",
            "--device", "cpu", "--client-workers", str(workers), "--out", str(out)]  # fmt: skip


def _checkpoint(out):
    return next(out.rglob("checkpoint.pt"), None) if out.exists() else None


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, parent pid, ...]; None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (a run's forked client workers)."""
    stats = {int(p): _stat(p) for p in os.listdir("/proc") if p.isdigit()}
    return {p for p, st in stats.items() if st and int(st[1]) == pid and st[0] != "Z"}


def _alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _stat(p)) and st[0] != "Z"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,workers",
    [(n, 1) for n in METHODS.names() if n != "fednas"] + [(n, 2) for n in METHODS.names()],
)
def test_kill_9_then_rerun_ends_where_an_unkilled_run_ends(tmp_path, name, workers):
    ds = tiny_dataset(channels=1)
    data = tmp_path / "data.npz"
    ds.save(data)
    write_partition(ds, {"partitioner": "iid", "num_clients": 4}, tmp_path / "part")
    part = tmp_path / "part" / "partition.json"
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_run_cmd(name, data, part, full), env=ENV, check=True, capture_output=True)
    proc = subprocess.Popen(_run_cmd(name, data, part, killed, workers), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while _checkpoint(killed) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers_seen: set[int] = set()
    if workers > 1:  # kill mid-round: while the next round's workers train
        while not workers_seen and time.time() < deadline and proc.poll() is None:
            workers_seen = _children(proc.pid)
        assert workers_seen, "no client worker was seen training"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    gone = time.time() + 10
    while _alive(workers_seen) and time.time() < gone:
        time.sleep(0.05)
    assert not _alive(workers_seen), "client workers outlived their killed run"
    rerun = subprocess.run(_run_cmd(name, data, part, killed, workers), env=ENV,
                           capture_output=True, text=True)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "resuming after round" in rerun.stdout
    for a in full.rglob("model.pt"):
        b = killed / a.relative_to(full)
        sa, sb = (torch.load(p, weights_only=True) for p in (a, b))
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ha, hb = (pd.read_csv(next(d.rglob("history.csv"))) for d in (full, killed))
    cols = [c for c in ha.columns if c not in TIMING]
    pd.testing.assert_frame_equal(ha[cols], hb[cols])
