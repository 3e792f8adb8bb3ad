"""Whether two experiments of the same config computed the same numbers, run by run.

For every run and seed in both result folders (``dfnas.report.compare``): the final
network (one SHA-256 over every tensor of model.pt: equal exactly when the tensors are),
metrics.json and history.csv (every value but the clocks, the process's memory peak and
the provenance), and the files a method writes beside them; then the comparison tables,
column for column, but the measured ones (wall time, compute hours, process peak, export
latency). Bitwise equality holds only on one CPU kind; run both on the same machine::

    .venv/bin/snakemake --cores all --config experiment=after
    .venv/bin/python scripts/compare_experiments.py results/digits results/after
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from dfnas.report.compare import UNSTABLE, compare_run


def main(a: Path, b: Path) -> int:
    runs_a = {p.parent.relative_to(a) for p in a.glob("runs/**/seed*/metrics.json")}
    runs_b = {p.parent.relative_to(b) for p in b.glob("runs/**/seed*/metrics.json")}
    both = sorted(runs_a & runs_b)
    for only, where in ((runs_a - runs_b, a), (runs_b - runs_a, b)):
        for run in sorted(only):
            print(f"only in {where}: {run}")
    differing = 0
    for run in both:
        diffs = compare_run(a / run, b / run)
        differing += bool(diffs)
        print(f"{'DIFFERS' if diffs else 'same   '} {run} {'; '.join(diffs)}")
    ta = pd.read_csv(a / "tables/comparison.csv")
    tb = pd.read_csv(b / "tables/comparison.csv")
    cols = [c for c in ta.columns if not UNSTABLE.search(c)]
    same_table = list(ta.columns) == list(tb.columns) and ta[cols].equals(tb[cols])
    print(
        f"{len(both)} runs x seeds in both, {differing} differ; comparison.csv "
        f"{'equal' if same_table else 'DIFFERS'} in {len(cols)} of {len(ta.columns)} columns "
        f"(not compared: {', '.join(c for c in ta.columns if c not in cols)})"
    )
    return int(bool(differing) or not same_table or runs_a != runs_b)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
