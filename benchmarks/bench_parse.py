"""How long `snakemake -n` takes, this tree against an earlier revision, side by side.

Every Snakemake call, and on a cluster every job, parses the Snakefile; since the plan
cache (``dfnas.workflow_plan``) the full config check runs on the first parse of a config
only. This times a dry run of the same config in the same working directory (so the same
results on disk and the same DAG) with each tree's Snakefile and source, alternating the
contenders: the first parse of each (``cold``: this tree builds its plan there) and the
median of the next ``--repeats`` (``warm``).

    python benchmarks/bench_parse.py --before f0d5d47 [--configfile config/config.yaml]
        [--workdir DIR] [--repeats 5]

The earlier revision is checked out into a temporary folder (``git archive``); the plan
folder of the working directory is removed first, so ``cold`` is a real first parse.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def checkout(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def dry_run(tree: Path, workdir: Path, configfile: Path) -> tuple[float, int]:
    """Seconds of one dry run, and the jobs it would run."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(tree / "Snakefile")]
    cmd += ["-d", str(workdir), "--cores", "1", "--configfile", str(configfile)]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"{tree}: snakemake -n failed:\n{res.stderr[-2000:]}")
    jobs = 0
    lines = res.stdout.splitlines()
    if "total" in res.stdout:
        jobs = next(int(line.split()[1]) for line in lines if line.startswith("total"))
    return seconds, jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="the earlier revision (a git commit)")
    ap.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a fresh folder")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp) / "work"
        workdir.mkdir(exist_ok=True)
        shutil.rmtree(workdir / ".snakemake" / "dfnas", ignore_errors=True)
        (Path(tmp) / "before").mkdir()
        before = checkout(args.before, Path(tmp) / "before")
        trees = {f"before ({args.before})": before, "this tree": REPO}
        times: dict[str, list[float]] = {k: [] for k in trees}
        jobs = {}
        for _ in range(args.repeats + 1):
            for name, tree in trees.items():
                seconds, jobs[name] = dry_run(tree, workdir, args.configfile.resolve())
                times[name].append(seconds)
    print(f"config {args.configfile}, workdir {args.workdir or 'fresh'}; dry run, seconds")
    print(f"{'tree':<24} {'cold':>6} {'warm (median)':>14} {'jobs':>5}")
    for name, t in times.items():
        print(f"{name:<24} {t[0]:>6.2f} {statistics.median(t[1:]):>14.2f} {jobs[name]:>5}")
    first, second = times.values()
    print(f"warm speed-up: {statistics.median(first[1:]) / statistics.median(second[1:]):.1f}x")


if __name__ == "__main__":
    main()
