"""A live Flower federation on this machine: one SuperLink and two SuperNodes started as
processes (insecure, loopback only, free ports), a tiny DFNAS and a tiny FedAvg run
through ``flwr run`` with the app in flower/, each client holding only its own shard. Each
Flower run must write the result contract and end bit for bit where the in-process loop
ends (model tensors, history, accuracy); every process started is stopped by its process
group. Skips where flwr is not installed (pip install -e '.[flower]')."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import SMALL, tiny_dataset

from conftest import REPO
from dfnas.cli import main as dfnas_main
from dfnas.federated.settings import RunSettings
from dfnas.partition.stage import write_partition
from dfnas.run import run_method

ONE_CPU = RunSettings(device="cpu", threads=1)

pytest.importorskip("flwr", reason="flwr is not installed (pip install -e '.[flower]')")

BIN = Path(sys.executable).parent
CLIENTS = 2
TIMING = {"round_seconds", "client_seconds", "client_cpu_seconds", "peak_memory_bytes"}
SPECS = {
    "dfnas": {
        "method": "dfnas",
        "model": "shufflenetv2",
        "model_args": SMALL["dfnas"]["model_args"],
        # a search round, then the child: both phases, the hand-off and its BN re-estimation
        "options": SMALL["dfnas"]["options"] | {"search_rounds": 1},
        "training": {"rounds": 2, "local_steps": 2, "batch_size": 8, "personalize_epochs": 1},
    },
    "fedavg": {
        "method": "fedavg",
        "model": "cnn",
        "training": {"rounds": 2, "local_steps": 2, "batch_size": 8, "personalize_epochs": 1},
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, limit_s: float = 60) -> None:
    deadline = time.time() + limit_s
    while time.time() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"SuperLink not listening on {port}:\n{log.read_text()[-2000:]}")


def _start(cmd: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as f:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process group (a SuperNode's ClientApps, the SuperLink's
    ServerApp), SIGKILL to what is left after 10 s."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 10
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    """Data, partition, per-client shards, and a running SuperLink with one SuperNode per
    client; yields what a run needs and stops every process afterwards."""
    root = tmp_path_factory.mktemp("flower")
    ds = tiny_dataset(channels=1)
    ds.save(root / "data.npz")
    write_partition(ds, {"partitioner": "iid", "num_clients": CLIENTS}, root / "part")
    home = root / "flwr_home"
    home.mkdir()
    # the SuperLink and SuperNodes start their helpers (flower-superexec) by name
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "FLWR_HOME": str(home), "PYTHONPATH": str(REPO / "src"), "PATH": path}
    link = _free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\n'
        f'address = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    procs = [
        _start(
            [
                str(BIN / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(link),
            ],
            root / "superlink.log",
            env,
        )  # fmt: skip
    ]
    try:
        _wait_for_port(link, procs[0], root / "superlink.log")
        for k in range(CLIENTS):
            node = f'partition-id={k} shard="{root / "shards" / f"client{k}.npz"}"'
            procs.append(_start(
                [str(BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{link}",
                 "--host", "127.0.0.1", "--port", str(_free_port()), "--node-config", node],
                root / f"supernode{k}.log", env))  # fmt: skip
        yield {"root": root, "env": env, "procs": procs}
    finally:
        _stop(procs)


def _logs(root: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(root.glob("*.log")))


def _check_same_run(ref: Path, out: Path, name: str, rounds: int) -> None:
    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (ref, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    ha, hb = (pd.read_csv(d / "history.csv") for d in (ref, out))
    cols = [c for c in ha.columns if c not in TIMING]
    pd.testing.assert_frame_equal(ha[cols], hb[cols])
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (ref, out))
    for key in ("accuracy", "loss", "train_flops", "bytes_down", "bytes_up",
                "personalized_accuracy_mean"):  # fmt: skip
        assert ma[key] == mb[key], (name, key)

    flower = json.loads((out / "flower.json").read_text())
    assert len(flower["rounds"]) == rounds
    total = flower["total"]
    carried = total["tensor_bytes_down"] + total["tensor_bytes_up"]
    # no client drops here: the tensors Flower carried are what the benchmark counts, less
    # DFNAS's BN re-estimation of the child (server-side work here, counted as client work)
    if name == "fedavg":
        assert carried == ma["bytes_down"] + ma["bytes_up"]
    assert 0 < carried <= ma["bytes_down"] + ma["bytes_up"]
    # Flower's framing (about 450 bytes per tensor) and the client's context beside them:
    # a few tens of kB per message at this size, whatever the network's size
    messages = 2 * sum(r["clients"] for r in flower["rounds"])
    overhead = total["flower_bytes_down"] + total["flower_bytes_up"] - carried
    assert 0 < overhead < 100_000 * messages, name


@pytest.mark.slow
def test_flower_runs_match_the_in_process_loop(federation):
    """Both runs are submitted at once (the federation mostly waits on its 3 s polls), and
    the in-process references are computed meanwhile."""
    root, env = federation["root"], federation["env"]
    data, part = root / "data.npz", root / "part" / "partition.json"
    submitted = {}
    for name, spec in SPECS.items():
        out = root / f"{name}_flower"
        argv = ["flower-prepare", "--spec", json.dumps(spec), "--name", name, "--data",
                str(data), "--partition", str(part), "--seed", "1", "--threads", "1",
                "--out", str(out), "--shards", str(root / "shards")]  # fmt: skip
        assert dfnas_main(argv) == 0
        submitted[name] = subprocess.run(
            [str(BIN / "flwr"), "run", str(REPO / "flower"), "local",
             "--run-config", str(root / "shards" / f"{name}.run_config.toml")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert submitted[name].returncode == 0, submitted[name].stderr
    for name, spec in SPECS.items():
        ref = root / f"{name}_loop"
        run_method(spec, data, part, seed=1, out_dir=ref, name=name, settings=ONE_CPU)
    deadline = time.time() + 300
    outs = [root / f"{name}_flower" / "metrics.json" for name in SPECS]
    while not all(p.exists() for p in outs) and time.time() < deadline:
        time.sleep(0.5)
    for name, spec in SPECS.items():
        out = root / f"{name}_flower"
        assert (out / "metrics.json").exists(), f"{submitted[name].stdout}\n{_logs(root)}"
        for f in ("history.csv", "model.pt", "model.json", "config.json", "flower.json"):
            assert (out / f).exists(), f
        _check_same_run(root / f"{name}_loop", out, name, spec["training"]["rounds"])


def _flwr(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flwr"), *args], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def _wait_finished(run_id: str, env: dict, limit_s: float = 120) -> str:
    """The run's status once Flower says it finished (finished:completed, :failed, ...)."""
    deadline = time.time() + limit_s
    status = ""
    while time.time() < deadline:
        listed = _flwr(["ls", "local", "--run-id", run_id, "--format", "json"], env).stdout
        status = " ".join(str(r.get("status", "")) for r in json.loads(listed).get("runs", []))
        if status.startswith("finished"):
            return status
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not finish in {limit_s} s: {status}")


@pytest.mark.slow
def test_a_lost_supernode_stops_the_run_and_a_rerun_resumes_it(federation):
    """A SuperNode killed mid-run is a fault, not a dropout: the config's dropouts are
    drawn from the seed, so a real loss cannot be one of them without making the run
    depend on timing. The round waits ``round_timeout`` and the run stops naming the
    round and client, keeping the checkpoints of the rounds before; once the node is
    back, the same ``flwr run`` resumes after the last checkpointed round and ends bit
    for bit where the uninterrupted in-process run ends. (Last in this file: it replaces
    one of the module's SuperNodes.)"""
    root, env, procs = federation["root"], federation["env"], federation["procs"]
    data, part = root / "data.npz", root / "part" / "partition.json"
    spec = {**SPECS["fedavg"], "training": {**SPECS["fedavg"]["training"], "rounds": 6}}
    name, out = "lost", root / "lost_flower"
    argv = ["flower-prepare", "--spec", json.dumps(spec), "--name", name, "--data",
            str(data), "--partition", str(part), "--seed", "1", "--threads", "1",
            "--out", str(out), "--shards", str(root / "shards")]  # fmt: skip
    assert dfnas_main(argv) == 0
    run_config = root / "shards" / f"{name}.run_config.toml"
    # long enough for a ClientApp process to start on a busy machine (import torch, read
    # its shard), short enough to wait out once the node is gone
    run_config.write_text(run_config.read_text() + "round_timeout = 20\n")
    submit = [str(BIN / "flwr"), "run", str(REPO / "flower"), "local", "--run-config",
              str(run_config)]  # fmt: skip
    first = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    run_id = re.search(r"run (\d+)", first.stdout).group(1)
    checkpoint = out / "checkpoint.pt"
    deadline = time.time() + 180
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.1)
    log = _flwr(["log", run_id, "local", "--show"], env).stdout
    assert checkpoint.exists(), log[-3000:]
    node = procs[2]  # client 1's SuperNode, with its ClientApps
    os.killpg(node.pid, signal.SIGKILL)
    node.wait()
    # the round waits round_timeout for client 1, then the run stops in one line
    status = _wait_finished(run_id, env)
    assert "failed" in status, status
    log = _flwr(["log", run_id, "local", "--show"], env).stdout
    stopped = [line for line in log.splitlines() if line.startswith("flower run stopped: ")]
    assert len(stopped) == 1 and "client 1 did not reply" in stopped[0], log[-3000:]
    assert checkpoint.exists() and not (out / "metrics.json").exists()
    # the node comes back under the same partition-id; the same submission resumes
    procs[2] = _start(node.args, root / "supernode1.log", env)
    again = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    ref = root / f"{name}_loop"
    run_method(spec, data, part, seed=1, out_dir=ref, name=name, settings=ONE_CPU)
    deadline = time.time() + 300
    while not (out / "metrics.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    assert (out / "metrics.json").exists(), _logs(root)
    a, b = (torch.load(d / "model.pt", weights_only=True) for d in (ref, out))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha, hb = (pd.read_csv(d / "history.csv") for d in (ref, out))
    cols = [c for c in ha.columns if c not in TIMING]
    pd.testing.assert_frame_equal(ha[cols], hb[cols])
    # the second submission ran only the rounds after the checkpoint
    resumed = len(json.loads((out / "flower.json").read_text())["rounds"])
    assert 0 < resumed < spec["training"]["rounds"], resumed
