"""Random architectures of a space as a distribution, the control a NAS result is judged
against (Li and Talwalkar 2019; Yang et al. 2020): a searched child is worth something
only if it beats most random children of its space trained the same way.

A run that lists ``arch_seeds`` is trained once per seed (``config.expand_arch_runs``:
runs ``<run>-a<k>``); the comparison table then gets, per dataset and partition, one
summary row for the group (the mean over architectures of each one's mean over training
seeds, the std across architectures, and the best) and, for every row, the percentile of
its accuracy among the group's architectures::

    table = add_random_distribution(table, {"fedavg_random": ["fedavg_random-a0", ...]})
    table["pct_vs_fedavg_random"]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RANDOM_METHOD = "random architectures"  # the summary rows' method


def percentile(value: float, population: np.ndarray) -> float:
    """Share of ``population`` below ``value`` (ties count half), in percent."""
    if population.size == 0 or np.isnan(value):
        return np.nan
    below = (population < value).sum() + 0.5 * (population == value).sum()
    return 100.0 * below / population.size


def add_random_distribution(table: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """The table with one summary row per group and setting, and a ``pct_vs_<group>``
    column; rows of the group's own architectures keep their place and their values."""
    summaries = []
    for group, members in groups.items():
        col = f"pct_vs_{group}"
        table[col] = np.nan
        for (dataset, partition), block in table.groupby(["dataset", "partition"]):
            archs = block[block["run"].isin(members)]
            if archs.empty:
                continue
            accs = archs["accuracy"].to_numpy()
            for idx, acc in block["accuracy"].items():
                table.loc[idx, col] = percentile(acc, accs)
            # costs: the mean architecture's; matched-compute readings are per run only
            row = archs.mean(numeric_only=True).to_dict() | {
                "dataset": dataset,
                "partition": partition,
                "run": f"{group} ({len(archs)} random)",
                "method": RANDOM_METHOD,
                "seeds": int(archs["seeds"].min()),
                "accuracy": accs.mean(),
                "accuracy_std": accs.std(ddof=0),
                "random_best": accs.max(),
                "personalized_std": archs["personalized"].std(ddof=0),
                "unhealthy_seeds": 0,
                "curve_seeds": 0,
                "target_reached": 0,
                col: np.nan,
            }
            for key in ("acc_at_budget", "acc_at_budget_std", "TFLOPs_to_target"):
                row[key] = np.nan
            row["compute_h_to_target"] = np.nan
            summaries.append(row)
    if not summaries:
        return table
    out = pd.concat([table, pd.DataFrame(summaries)], ignore_index=True)
    return out.sort_values(["dataset", "partition", "run"], kind="stable").reset_index(drop=True)
