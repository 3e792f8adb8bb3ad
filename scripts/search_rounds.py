"""Every search's rounds, side by side over seeds: what to read before quoting a search's
accuracy (did the supernet's loss leave chance, did alpha move, did the child learn?).

For each run folder (or its earlier stage's, FedNAS's ``search/``) whose history has
alpha columns: per round, the stage, the train loss, the test accuracy where evaluated,
alpha's largest op probability and mean entropy::

    .venv/bin/python scripts/search_rounds.py archive/verdict_cifar10_16 --run dfnas
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["round", "stage", "train_loss", "test_accuracy", "alpha_max_prob", "alpha_entropy"]


def search_histories(root: Path, run: str | None) -> dict[str, pd.DataFrame]:
    """run/seed -> its rounds, for every history under ``root`` with alpha columns."""
    found = {}
    for path in sorted(root.glob("runs/*/*/*/seed*/**/history.csv")):
        seed_dir = next(p for p in path.parents if p.name.startswith("seed"))
        if run and seed_dir.parent.name != run:
            continue
        frame = pd.read_csv(path)
        if "alpha_max_prob" in frame:
            key = str(path.parent.relative_to(seed_dir.parent.parent))
            found[key] = frame[[c for c in COLUMNS if c in frame]]
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("root", type=Path, help="results/<experiment> or archive/<experiment>")
    p.add_argument("--run", default=None, help="one run's name (default: every search)")
    args = p.parse_args(argv)
    found = search_histories(args.root, args.run)
    if not found:
        print(f"error: no search history (alpha columns) under {args.root}", file=sys.stderr)
        return 2
    for key, frame in found.items():
        print(f"\n{key}")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
