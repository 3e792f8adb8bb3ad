"""What a cluster run needs, checked without a cluster: resources on every job that
trains, searches or measures latency, GPU requests under device=cuda, the SLURM profiles,
the conda environment's path to the package, and the schema inside the package. The
live-SLURM run is tests/slurm/run.sh (`make test-slurm`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from dfnas.config import SCHEMA_PATH

TINY = REPO / "tests" / "slurm" / "tiny.yaml"
TRAINING_RULES = {"fedavg_train", "dfnas_train", "fednas_search", "fednas_train"}


# the live-SLURM config, with FedNAS's two stages added (left out of the live run for time)
FEDNAS = {
    "method": "fednas",
    "model_args": {"C": 2, "layers": 3},
    "training": {"rounds": 1},
    "train_stage": {"model_args": {"C": 4, "layers": 3}, "training": {"rounds": 1}},
}


def dry_run(tmp_path, *args: str) -> dict[str, list[dict[str, str]]]:
    """Resources of every job of a dry run of the tiny config, by rule."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["runs"]["fednas"] = FEDNAS
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
    cmd += ["-n", "--cores", "2", "--configfile", str(configfile), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out.stdout):
        name = re.match(r"(?:local)?rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if name and res:
            pairs = dict(kv.split("=", 1) for kv in res.group(1).split(", "))
            jobs.setdefault(name.group(1), []).append(pairs)
    return jobs


def test_every_training_job_asks_for_memory_time_and_gpu(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    jobs = dry_run(tmp_path)
    assert set(jobs) >= TRAINING_RULES
    per_round = cfg["resources"]["minutes_per_round"]
    for rule in TRAINING_RULES:
        for res in jobs[rule]:
            assert res["mem_mb"] == str(cfg["resources"]["mem_mb"]) and res["gpu"] == "0"
    # runtime follows the stage's rounds: 2 for the one-stage runs, 1 per FedNAS stage
    assert jobs["fedavg_train"][0]["runtime"] == str(int(10 + per_round * 2))
    assert jobs["fednas_search"][0]["runtime"] == str(int(10 + per_round * 1))
    cuda = dry_run(tmp_path, "--config", "device=cuda")
    assert all(r["gpu"] == "1" for rule in TRAINING_RULES for r in cuda[rule])


@pytest.mark.parametrize("name", ["slurm", "slurm-gpu"])
def test_slurm_profiles(name):
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / name / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(profile["default-resources"])
    assert ("device=cuda" in profile.get("config", [])) == (name == "slurm-gpu")


def test_conda_env_finds_the_package_from_snakemakes_copy(tmp_path):
    """Snakemake builds the environment from a copy of envs/dfnas.yaml under
    .snakemake/conda/, and conda hands the pip lines to pip as a requirements file: from
    there, the line must still name this repository."""
    env = yaml.safe_load((REPO / "envs" / "dfnas.yaml").read_text())
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    copy = tmp_path / ".snakemake" / "conda"
    copy.mkdir(parents=True)
    (copy / "requirements.txt").write_text("\n".join(pip) + "\n")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps"]
    cmd += ["--no-build-isolation", "--no-index", "-r", "requirements.txt"]
    out = subprocess.run(
        cmd, cwd=copy, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DFNAS_REPO": str(REPO)},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]
    assert "Would install dfnas" in out.stdout
    assert (
        'os.environ.setdefault("DFNAS_REPO", workflow.basedir)' in (REPO / "Snakefile").read_text()
    )


def test_the_schema_ships_inside_the_package():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    assert SCHEMA_PATH.is_relative_to(REPO / "src" / "dfnas") and SCHEMA_PATH.exists()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["dfnas"]
    assert any(SCHEMA_PATH.relative_to(REPO / "src" / "dfnas").match(p) for p in patterns)
    assert (REPO / "workflow" / "schemas" / "config.schema.yaml").resolve() == SCHEMA_PATH
