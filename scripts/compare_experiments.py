"""Whether two experiments of the same config computed the same numbers, run by run.

For every run and seed in both result folders: the final network (model.pt, tensor for
tensor, ``torch.equal``), metrics.json and history.csv (every value but the clocks, the
process's memory peak and the provenance), and the files a method writes beside them;
then the comparison tables, column for column, but the measured ones (wall time,
compute hours, process peak, export latency). Bitwise equality holds only on one CPU
kind; run both on the same machine::

    .venv/bin/snakemake --cores all --config experiment=after
    .venv/bin/python scripts/compare_experiments.py results/digits results/after
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import torch
from engine_fingerprint import stable  # the scripts' folder is on sys.path when run

# measured, not computed; or where the run came from
UNSTABLE = re.compile(
    r"seconds|peak|wall|compute_h|latency_ms|cpu|isa|onednn|torch|device_name|threads|gpu"
    r"|code_version|client_workers|provenance|experiment"
)


def _stable(obj):
    return stable(obj, UNSTABLE)


def compare_run(a: Path, b: Path) -> list[str]:
    """What differs between one run's two result folders (empty: nothing)."""
    diffs = []
    sa = torch.load(a / "model.pt", map_location="cpu", weights_only=True)
    sb = torch.load(b / "model.pt", map_location="cpu", weights_only=True)
    if list(sa) != list(sb):
        diffs.append("model.pt: other tensors")
    else:
        unequal = [k for k in sa if not torch.equal(sa[k], sb[k])]
        if unequal:
            diffs.append(f"model.pt: {len(unequal)} of {len(sa)} tensors differ ({unequal[0]})")
    for name in ("metrics.json", "model.json"):
        if _stable(json.loads((a / name).read_text())) != _stable(
            json.loads((b / name).read_text())
        ):
            diffs.append(name)
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    cols = [c for c in ha.columns if not UNSTABLE.search(c)]
    if list(ha.columns) != list(hb.columns) or not ha[cols].equals(hb[cols]):
        diffs.append("history.csv")
    own = {p.name for p in a.glob("*.json")} - {"metrics.json", "model.json", "config.json"}
    for name in sorted(own):
        if json.loads((a / name).read_text()) != json.loads((b / name).read_text()):
            diffs.append(name)
    return diffs


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
