"""Every run's test accuracy and network size, seed by seed.

The verdict's rows are paired differences over seeds; this is the table a reader checks
them against (is one seed an outlier, did a search derive a child over the budget on one
seed only). It is generated from the runs like every other table, so the pages that
quote per-seed numbers include it instead of retyping them. A group of random networks
(``arch_groups``) is one row: the mean of its networks' accuracies on each seed, and the
range of their MACs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dfnas.io import atomic_path


def per_seed(runs: pd.DataFrame, arch_groups: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per (dataset, partition, run or random group) and one cell per seed:
    ``accuracy %`` and ``MACs``, long format (seed a column) so CSV keeps the numbers."""
    group_of = {r: g for g, members in (arch_groups or {}).items() for r in members}
    runs = runs.assign(row=[group_of.get(r, r) for r in runs["run"]])
    keys = ["dataset", "partition", "row", "seed"]
    table = runs.groupby(keys, sort=True).agg(
        networks=("run", "nunique"),
        accuracy=("accuracy", "mean"),
        macs_min=("macs", "min"),
        macs_max=("macs", "max"),
    )
    table = table.reset_index()
    table.insert(3, "group", table["row"].isin(list(arch_groups or {})))
    return table


def _cell(r: pd.Series) -> str:
    acc = f"{100 * r['accuracy']:.2f} %"
    if not r["group"]:
        return f"{acc}, {r['macs_min'] / 1e6:.3f} M"
    macs = f"{r['macs_min'] / 1e6:.3f}-{r['macs_max'] / 1e6:.3f} M"
    return f"{acc} (mean of {r['networks']}), {macs}"


def per_seed_markdown(table: pd.DataFrame) -> str:
    """A section per dataset and partition: runs down, seeds across, each cell the test
    accuracy and the MACs per inference of the final network."""
    parts = []
    for (dataset, partition), part in table.groupby(["dataset", "partition"], sort=True):
        wide = part.assign(cell=part.apply(_cell, axis=1)).pivot(
            index="row", columns="seed", values="cell"
        )
        wide.columns = [f"seed {s}" for s in wide.columns]
        wide = wide.fillna("-").rename_axis("run").reset_index()
        parts.append(f"### {dataset} / {partition}\n\n{wide.to_markdown(index=False)}\n")
    note = (
        "Test accuracy of the final network and its MACs per inference, per seed (the "
        "same partition and client stream for every run of a seed); a random group: the "
        "mean accuracy of its networks and the range of their MACs.\n"
    )
    return "\n".join(parts) + "\n" + note


def write_per_seed(table: pd.DataFrame, csv: Path, md: Path) -> None:
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(md) as tmp:
        tmp.write_text(per_seed_markdown(table))
