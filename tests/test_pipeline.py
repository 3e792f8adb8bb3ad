"""The whole pipeline on a tiny config: tables, every figure, the report, and baselines
added the way the README documents them (taken from the README itself): a standalone rule,
a one-stage method and a two-stage method, each one file dropped into the package."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO

TINY = {
    "experiment": "tiny",
    "datasets": {"digits": {}},
    "partitions": {"iid": {"partitioner": "iid", "num_clients": 3}},
    "seeds": [0],
    "threads_per_run": 1,
    "training": {"rounds": 2, "local_steps": 2, "batch_size": 16, "personalize_epochs": 1},
    "devices": {"fast": {"latency_ms": 1.0e6}},
    "external_runs": ["majority"],
    "verdict": {"claimant": "dfnas-fast", "baseline": "fednas", "fixed": "fedavg_cnn"},
    "runs": {
        "fedavg_cnn": {
            "method": "fedavg",
            "model": "cnn",
            "model_args": {"width": 8, "hidden": 32},
        },
        "dfnas": {
            "method": "dfnas",
            "model_args": {"stem": 8, "stages": [[1, 16], [1, 32]], "last": 32},
            "options": {"search_rounds": 1, "warmup_rounds": 0},
            "devices": ["fast"],
        },
        "fednas": {
            "method": "fednas",
            "model_args": {"C": 2, "layers": 3},
            "training": {"rounds": 1},
            "train_stage": {"model_args": {"C": 4, "layers": 3}, "training": {"rounds": 1}},
        },
        # the README's method examples
        "fedprox_cnn": {
            "method": "fedprox",
            "model": "cnn",
            "model_args": {"width": 8, "hidden": 32},
            "options": {"mu": 0.1},
        },
        "fednas_darts": {
            "method": "fednas_darts",
            "model_args": {"C": 2, "layers": 3},
            "training": {"rounds": 1},
            "train_stage": {"model_args": {"C": 4, "layers": 3}, "training": {"rounds": 1}},
        },
    },
}


def readme_examples(kind: str) -> list[tuple[str, str]]:
    """(path, text) of each worked example of ``kind`` in the docs (docs/extending.md)."""
    text = "\n".join(p.read_text() for p in [REPO / "README.md", *(REPO / "docs").glob("*.md")])
    found = re.findall(rf"<!-- {kind}-example: (\S+) -->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert found, f"README lost its {kind} examples"
    return found


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny config run through the workflow in a copy of the repository, committed
    first, so every run records a commit as its code version (as the archive requires)."""
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    work.mkdir()
    for part in ("workflow", "envs", "src"):
        shutil.copytree(REPO / part, work / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Snakefile", work)
    for rel, code in readme_examples("baseline") + readme_examples("method"):
        assert not (work / rel).exists(), f"{rel}: the README's example would overwrite it"
        (work / rel).write_text(code)
    (work / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (work / ".gitignore").write_text("results/\n.snakemake/\n__pycache__/\n*.egg-info/\n")
    for git in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tiny"]):
        subprocess.run([*GIT, *git], cwd=work, check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(work / "src")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
    run = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return work, cmd, env


@pytest.mark.slow
def test_tiny_pipeline_end_to_end(tiny):
    work, cmd, env = tiny
    exp = work / "results" / "tiny"
    table = pd.read_csv(exp / "tables/comparison.csv")
    runs = {"fedavg_cnn", "dfnas-fast", "fednas", "majority", "fedprox_cnn", "fednas_darts"}
    assert set(table["run"]) == runs
    assert (exp / "tables/comparison.md").read_text().count("| digits") == len(runs)
    # where the numbers come from (each run's provenance), under the table
    assert "Measured on: " in (exp / "tables/comparison.md").read_text()
    assert (exp / "tables/comparison.tex").exists()
    # matched compute: the cheapest run is read at its own total; the external run has no
    # history; a run whose first evaluation cost more than the budget has none within it
    curves = table[table["curve_seeds"] > 0]
    cheapest = curves.loc[curves["train_TFLOPs"].idxmin()]
    assert cheapest["acc_at_budget"] == pytest.approx(cheapest["accuracy"])
    assert table.set_index("run").loc["majority", "curve_seeds"] == 0
    dfnas = table[table["run"] == "dfnas-fast"].iloc[0]
    assert dfnas["train_TFLOPs_vs_ref"] == pytest.approx(1.0)
    for fig in ("accuracy_per_round", "accuracy_vs_compute", "resources", "personalized"):
        for ext in ("png", "pdf"):
            assert (exp / f"figures/{fig}.{ext}").stat().st_size > 1000
    assert (exp / "figures/architecture/digits/iid/dfnas-fast/seed0.png").exists()
    assert (exp / "latency/digits/dfnas.json").exists()
    assert (exp / "logs/digits/iid/fednas/seed0.search.log").exists()
    assert (exp / "benchmarks/digits/iid/fednas/seed0.train.tsv").exists()
    assert len(list((work / "results/partitions").glob("digits-*/iid-*/heatmap.png"))) == 1
    # FedNAS's train stage trains exactly the searched genotype, and both stages are costed
    fednas = exp / "runs/digits/iid/fednas/seed0"
    searched = json.loads((fednas / "search/genotype.json").read_text())
    assert json.loads((fednas / "model.json").read_text())["model_args"]["genotype"] == searched
    metrics = json.loads((fednas / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"search", "train"} and metrics["rounds"] == 2
    # the README's two-stage method went through rules built from its declaration alone
    variant = exp / "runs/digits/iid/fednas_darts/seed0"
    searched = json.loads((variant / "search/genotype.json").read_text())
    assert json.loads((variant / "model.json").read_text())["model_args"]["genotype"] == searched
    assert json.loads((variant / "metrics.json").read_text())["method"] == "fednas_darts"
    assert (exp / "logs/digits/iid/fednas_darts/seed0.search.log").exists()
    assert (
        json.loads((exp / "runs/digits/iid/fedprox_cnn/seed0/metrics.json").read_text())["accuracy"]
        > 0
    )

    # the NAS runs' children are exported, checked in onnxruntime and timed; the table
    # shows what was measured; the verdict reads the runs the config names
    for run in ("dfnas-fast", "fednas", "fednas_darts"):
        report = json.loads((exp / f"runs/digits/iid/{run}/seed0/export/export.json").read_text())
        assert report["top1_agreement"] >= 0.999 and report["latency_ms"] > 0
        # only dfnas-fast searched for a latency budget (1e6 ms: met)
        assert report["meets_latency_budget"] is (True if run == "dfnas-fast" else None)
    assert not (exp / "runs/digits/iid/fedavg_cnn/seed0/export").exists()
    exported = table.set_index("run")["latency_ms"]
    assert exported[["dfnas-fast", "fednas"]].gt(0).all() and exported[["fedavg_cnn"]].isna().all()
    assert "budget met" in (exp / "tables/comparison.md").read_text()
    verdict = pd.read_csv(exp / "tables/verdict.csv")
    assert "accuracy at least fednas's" in set(verdict["claim"])
    assert (exp / "figures/verdict.png").stat().st_size > 1000

    dry = subprocess.run([*cmd, "-n"], cwd=work, capture_output=True, text=True, env=env)
    assert "Nothing to be done" in dry.stdout, dry.stdout[-2000:]
    rep = subprocess.run(
        [*cmd, "--report", "results/tiny/report.html"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert (exp / "report.html").stat().st_size > 10_000


def _archive(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts/archive.py"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_archive_regenerates_the_tables_and_checks_reruns(tiny, tmp_path):
    """The tiny experiment archived (small files only), its tables regenerated from the
    archive alone equal the workflow's; a rerun compares equal, a changed number does
    not; a later seed joins without touching the archived ones; code versions no rerun
    proved equal are refused with one line."""
    work, _, env = tiny
    exp, store = work / "results/tiny", tmp_path / "tiny"
    added = _archive(
        env, "add", str(exp), "--config", str(work / "tiny.yaml"), "--archive", str(store)
    )
    # the standalone rule's run records no code version: refused, the others archived
    assert added.returncode == 1 and "5 added, 0 equal, 0 differs, 1 refused" in added.stdout
    assert "refused runs/digits/iid/majority/seed0: records no code version" in added.stdout
    dfnas = store / "runs/digits/iid/dfnas-fast/seed0"
    assert not list(store.rglob("*.pt")) and not list(store.rglob("*.onnx"))
    assert json.loads((dfnas / "left_out.json").read_text())["model.pt"]["tensors"] > 0

    tables = _archive(env, "tables", str(store))
    assert tables.returncode == 0, tables.stderr
    for name in ("verdict.md", "verdict.csv"):
        assert (store / "tables" / name).read_text() == (exp / "tables" / name).read_text(), name
    ours = pd.read_csv(store / "tables/comparison.csv")
    workflows = pd.read_csv(exp / "tables/comparison.csv")
    workflows = workflows[workflows["run"] != "majority"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, workflows)
    seeds = pd.read_csv(store / "tables/per_seed.csv").set_index("row")
    assert (
        seeds.loc["dfnas-fast", "accuracy"]
        == json.loads((dfnas / "metrics.json").read_text())["accuracy"]
    )
    assert "| dfnas-fast" in (store / "tables/per_seed.md").read_text()
    assert (store / "figures/architecture/digits/iid/dfnas-fast/seed0.png").exists()
    assert (store / "figures/verdict.png").stat().st_size > 1000

    # every search's rounds read from the archive, as the docs quote them
    rounds = subprocess.run(
        [sys.executable, str(REPO / "scripts/search_rounds.py"), str(store)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert rounds.returncode == 0, rounds.stderr
    assert "dfnas-fast/seed0" in rounds.stdout and "fednas/seed0/search" in rounds.stdout
    assert "alpha_max_prob" in rounds.stdout

    same = _archive(env, "compare", str(exp), str(store))
    assert same.returncode == 0 and "5 runs x seeds compared" in same.stdout, same.stdout
    again = _archive(
        env, "add", str(exp), "--config", str(work / "tiny.yaml"), "--archive", str(store)
    )
    assert "5 equal" in again.stdout
    # --seeds picks the seeds to archive (here one the results do not hold: nothing)
    none = _archive(
        env,
        "add",
        str(exp),
        "--config",
        str(work / "tiny.yaml"),
        "--archive",
        str(store),
        "--seeds",
        "7",
    )
    assert "0 added, 0 equal, 0 differs, 0 refused" in none.stdout, none.stdout

    history = dfnas / "history.csv"
    frame = pd.read_csv(history)
    frame.loc[0, "train_loss"] += 1e-9
    frame.to_csv(history, index=False)
    changed = _archive(env, "compare", str(exp), str(store))
    assert changed.returncode == 1 and "DIFFERS runs/digits/iid/dfnas-fast/seed0 history.csv" in (
        changed.stdout
    )

    # a later seed (here a copy of seed 0 from other code) joins; the table refuses the mix
    later = tmp_path / "later/tiny"
    shutil.copytree(
        exp / "runs/digits/iid/fedavg_cnn/seed0", later / "runs/digits/iid/fedavg_cnn/seed1"
    )
    metrics = later / "runs/digits/iid/fedavg_cnn/seed1/metrics.json"
    blob = json.loads(metrics.read_text())
    blob["code_version"] = "f" * 40
    metrics.write_text(json.dumps(blob))
    config = tmp_path / "seed1.yaml"
    config.write_text(yaml.safe_dump(TINY | {"seeds": [1]}))
    more = _archive(env, "add", str(later), "--config", str(config), "--archive", str(store))
    assert "1 added" in more.stdout and more.returncode == 0, more.stdout + more.stderr
    mixed = _archive(env, "tables", str(store))
    assert mixed.returncode == 2 and mixed.stderr.count("\n") == 1, mixed.stderr
    assert "no rerun proved equal" in mixed.stderr and "fffffffffffff"[:12] in mixed.stderr
