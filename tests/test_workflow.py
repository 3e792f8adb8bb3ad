"""The Snakemake workflow itself: lint, dry run, a real partition run on digits, caching."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def smk(workdir: Path, *args: str, configfile: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2"]
    cmd += ["--configfile", str(configfile or REPO / "config" / "config.yaml"), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def _jobs(out: str) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table."""
    counts: dict[str, int] = {}
    lines = out.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_lint_is_clean(tmp_path):
    res = smk(tmp_path, "--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Lints for" not in res.stdout + res.stderr


def test_unknown_key_fails_at_start_in_one_line(tmp_path):
    res = smk(tmp_path, "-n", "--config", "no_such_key=1")
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    assert len(errors) == 1
    assert errors[0].startswith("config error: no_such_key: unknown key; allowed: ")
    assert "data_root" in errors[0] and "training" in errors[0]
    assert "Traceback" not in res.stderr


def test_an_external_run_nothing_writes_fails_at_start_in_one_line(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    conf = _write(tmp_path / "c.yaml", cfg | {"experiment": "ext", "external_runs": ["nobody"]})
    res = smk(tmp_path, "-n", configfile=conf)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    assert len(errors) == 1 and "external_runs: nothing writes results/ext/runs/" in errors[0]
    assert "/nobody/seed0/metrics.json" in errors[0]


@pytest.mark.slow
def test_partition_stage_runs_and_caches(tmp_path):
    cfg = {
        "experiment": "parts",
        "datasets": {"digits": {}},
        "partitions": {
            "iid": {"partitioner": "iid", "num_clients": 5},
            "dir": {"partitioner": "dirichlet", "num_clients": 5, "alpha": 0.5},
        },
    }
    conf = _write(tmp_path / "c.yaml", cfg)
    dry = smk(tmp_path, "-n", configfile=conf)
    assert dry.returncode == 0, dry.stderr
    assert _jobs(dry.stdout) == {"dataset": 1, "partition": 2, "all": 1}

    res = smk(tmp_path, configfile=conf)
    assert res.returncode == 0, res.stderr
    # partitions are a cache keyed by what shapes them: <dataset>-<digest>/<name>-<digest>
    (out,) = (tmp_path / "results" / "partitions").glob("digits-*/dir-*")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["num_clients"] == 5
    assert (out / "partition.log").exists()
    assert (out / "benchmark.tsv").exists()

    assert "Nothing to be done" in smk(tmp_path, "-n", configfile=conf).stdout

    cfg["partitions"]["dir"]["alpha"] = 0.3  # touches one partition only
    changed = smk(tmp_path, "-n", configfile=_write(tmp_path / "c.yaml", cfg))
    assert _jobs(changed.stdout) == {"partition": 1, "all": 1}, changed.stdout
    assert "pkey=dir-" in changed.stdout
    assert "pkey=iid-" not in changed.stdout


@pytest.mark.slow
def test_two_experiments_coexist_and_share_only_identical_caches(tmp_path):
    """Two configs run one after the other keep their own tables; the second reuses the
    first's dataset and identical partition, and builds its own for a partition that
    has the same name but another spec."""
    cnn = {"method": "fedavg", "model": "cnn", "model_args": {"width": 4, "hidden": 16}}
    first = {
        "experiment": "first",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "iid", "num_clients": 3}},
        "training": {"rounds": 1, "local_steps": 1, "batch_size": 16},
        "runs": {"cnn": cnn},
    }
    second = {
        **first,
        "experiment": "second",
        "partitions": {
            "p": {"partitioner": "iid", "num_clients": 3},  # same spec: shared
            "q": {"partitioner": "iid", "num_clients": 3, "seed": 7},  # another: built
        },
    }
    conf_a, conf_b = _write(tmp_path / "a.yaml", first), _write(tmp_path / "b.yaml", second)
    assert smk(tmp_path, configfile=conf_a).returncode == 0
    dry = smk(tmp_path, "-n", configfile=conf_b)
    jobs = _jobs(dry.stdout)
    assert "dataset" not in jobs and jobs["partition"] == 1, dry.stdout
    assert jobs["fedavg_train"] == 2  # its own runs, in its own folder
    res = smk(tmp_path, configfile=conf_b)
    assert res.returncode == 0, res.stderr[-2000:]
    for exp, rows in (("first", 1), ("second", 2)):
        table = (tmp_path / "results" / exp / "tables" / "comparison.md").read_text()
        assert table.count("| digits") == rows
    assert "Nothing to be done" in smk(tmp_path, "-n", configfile=conf_a).stdout
    assert "Nothing to be done" in smk(tmp_path, "-n", configfile=conf_b).stdout


def test_free_strings_reach_the_shell_quoted(tmp_path):
    """The config's free-form strings (data_root, an npz path; names are refused by
    pattern, options and model_args travel as one JSON word) with shell metacharacters:
    every shell command of the dry run keeps each as one word, so no injected command
    could run, and the strict prefix is kept for every rule."""
    payload = "d; touch PWNED; echo $(touch PWNED2) `touch PWNED3`"
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(data_root=payload, experiment="quoting")
    # every other free-form string: an npz path (loader options travel as JSON)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)}
    arrays |= {"y_train": np.arange(40) % 4, "x_test": arrays["x_train"][:8]}
    np.savez(tmp_path / f"{payload}.npz", **arrays, y_test=np.arange(8) % 4)
    cfg["datasets"]["mine"] = {"loader": "npz", "path": f"{payload}.npz"}
    res = smk(tmp_path, "-n", "-p", "--forceall", configfile=_write(tmp_path / "c.yaml", cfg))
    assert res.returncode == 0, res.stdout + res.stderr
    commands = [line.strip() for line in res.stdout.splitlines() if "python -m dfnas" in line]
    assert commands and any(payload in " ".join(shlex.split(c)) for c in commands)
    for command in commands:
        assert "touch" not in shlex.split(command), command
    assert not any(tmp_path.glob("PWNED*"))
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "shell.prefix(\n        f'set -euo pipefail; " in common


def test_a_key_given_twice_is_refused_at_start(tmp_path):
    """YAML keeps the last of two equal keys; the workflow refuses the file instead."""
    text = (REPO / "config" / "config.yaml").read_text() + "\ntraining: {rounds: 1}\n"
    (tmp_path / "c.yaml").write_text(text)
    res = smk(tmp_path, "-n", configfile=tmp_path / "c.yaml")
    assert res.returncode != 0
    assert "config error: training: given twice in one mapping" in res.stdout + res.stderr


@pytest.mark.slow
def test_a_failing_consumer_and_corrupt_caches_leave_the_next_experiment_its_caches(tmp_path):
    """One experiment's run fails while training on the shared dataset and partition, then
    a byte of each cache changes. The next experiment finds both rebuilt at start to the
    bytes and times its runs read (no dataset or partition job reruns), and finishes."""
    cnn = {"method": "fedavg", "model": "cnn", "model_args": {"width": 4, "hidden": 16}}
    first = {
        "experiment": "first",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "iid", "num_clients": 3}},
        "training": {"rounds": 2, "local_steps": 3, "batch_size": 16},
        "runs": {"diverges": cnn | {"training": {"lr": 1e6}}},
    }
    failed = smk(tmp_path, "--keep-going", configfile=_write(tmp_path / "a.yaml", first))
    assert failed.returncode != 0
    assert "training loss is" in "".join(p.read_text() for p in tmp_path.rglob("diverges/*.log"))
    shared = [
        *(tmp_path / "results" / "datasets").glob("digits-*/data.npz"),
        *(tmp_path / "results" / "partitions").glob("digits-*/p-*/partition.json"),
    ]
    assert len(shared) == 2  # the failing consumer deleted neither
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in shared}
    data, part = shared  # then a fault on disk in each
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    data.write_bytes(bytes(blob))
    assignment = json.loads(part.read_text())
    assignment["clients"][0]["train"][0] = assignment["clients"][1]["train"][0]
    part.write_text(json.dumps(assignment, indent=2))
    assert all(p.read_bytes() != before[p][0] for p in shared)
    second = first | {"experiment": "second", "runs": {"cnn": cnn}}
    conf = _write(tmp_path / "b.yaml", second)
    dry = smk(tmp_path, "-n", configfile=conf)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.stdout.count("rebuilt, the same bytes the runs read") == 2, dry.stdout
    for path, (blob, mtime) in before.items():  # what the runs read, never dated later
        assert path.read_bytes() == blob and path.stat().st_mtime_ns <= mtime, path
    jobs = _jobs(dry.stdout)
    assert "dataset" not in jobs and "partition" not in jobs, dry.stdout
    res = smk(tmp_path, configfile=conf)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "results" / "second" / "tables" / "comparison.md").exists()
