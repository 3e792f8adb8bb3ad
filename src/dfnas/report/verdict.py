"""The paper's claims, one per row, each with its measured numbers and a verdict.

DFNAS (arXiv 2010.06223) claims, against FedNAS: slightly better accuracy; an order of
magnitude less client compute, memory and communication; a child ready to deploy with no
retraining; and a child that fits the target device. A NAS result also owes the reader the
control every NAS reviewer asks for: does the searched child beat its own space's fixed
and random networks trained the same way? The config names the runs (``verdict:``), so
this module never guesses which run is which.

How a row reads its numbers (paired per-seed differences with a 95 % t-interval for
accuracy, per-seed ratios against the factor for costs): ``report.verdict_rows``; the
device-budget rows: ``report.verdict_budget``. The numbers are what the table prints;
the verdict is a reading of them, never a replacement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfnas.io import atomic_path
from dfnas.report.verdict_budget import budget_rows
from dfnas.report.verdict_rows import (
    FAILS,
    HOLDS,
    POWER,
    UNCLEAR,
    VerdictSpec,
    accuracy_row,
    per_seed,
    pm,
    ratio_verdict,
    structure_row,
)

# cost claims: label -> (key of a collected run, unit scale, unit)
COST_CLAIMS = {
    "client compute (training FLOPs)": ("train_flops", 1e-12, "TFLOPs"),
    "client compute (CPU time)": ("compute_seconds", 1 / 3600, "CPU h"),
    "client memory": ("client_memory_bytes", 1e-6, "MB"),
    "communication": ("comm_bytes", 1e-6, "MB"),
}


def _random_mean(runs: pd.DataFrame, members: list[str]) -> pd.Series:
    """Per seed, the mean accuracy of the random architectures: the paired partner of a
    searched child is the space's average random network under the same seed."""
    rows = runs[runs["run"].isin(members)]
    return rows.groupby("seed")["accuracy"].mean()


def _cost_row(
    claim: str, a: pd.Series, b: pd.Series, b_name: str, unit: str, scale: float, factor: float
) -> dict:
    seeds = sorted(set(a.index) & set(b.index))
    ratios = np.array([b[s] / a[s] if a[s] else np.nan for s in seeds], dtype=float)
    return {
        "claim": f"{claim}: {factor:g}x less than {b_name}",
        "short": claim.replace("client compute ", "compute "),
        "claimant": f"{pm(a.to_numpy(), scale, 4)} {unit}",
        "against": f"{b_name}: {pm(b.to_numpy(), scale, 4)} {unit}",
        "paired difference": (
            f"{b_name} / claimant = {np.nanmean(ratios):.2f}x "
            f"(seeds {np.nanmin(ratios):.2f}-{np.nanmax(ratios):.2f}x)"
            if ratios.size
            else "n/a"
        ),
        "per seed": ", ".join(f"{r:.2f}x" for r in ratios),
        "verdict": ratio_verdict(ratios, factor),
        "kind": "ratio",
        "values": ratios,
    }


def _health_row(block: pd.DataFrame, runs: list[str]) -> dict:
    """Whether both searches searched (report.collect's flag: not near chance, alpha not
    uniform); without it the accuracy rows compare unsearched draws."""
    rows = block[block["run"].isin(runs)]
    flagged = rows[rows["search_warnings"].fillna("") != ""]
    row = structure_row(
        "precondition: every search left chance and moved its alpha",
        f"{len(rows) - len(flagged)} of {len(rows)} searches healthy",
        HOLDS if flagged.empty else FAILS,
        per_seed="; ".join(
            f"{r.run} seed {r.seed}: {r.search_warnings}" for r in flagged.itertuples()
        ),
    )
    return row | {"short": "searches healthy"}


def verdict_table(runs: pd.DataFrame, spec: VerdictSpec) -> list[pd.DataFrame]:
    """One table per dataset x partition: a row per claim. ``runs`` is
    ``report.collect.load_runs``'s frame (one row per run and seed)."""
    tables = []
    for (dataset, partition), block in runs.groupby(["dataset", "partition"], sort=True):
        present = set(block["run"])
        if spec.claimant not in present or spec.baseline not in present:
            continue
        acc = {r: per_seed(block, r, "accuracy") for r in present}
        rows = [_health_row(block, [spec.claimant, spec.baseline])]
        rows += [
            accuracy_row(
                f"accuracy at least {spec.baseline}'s",
                acc[spec.claimant],
                acc[spec.baseline],
                spec.claimant,
                spec.baseline,
            )
        ]
        for label, (key, scale, unit) in COST_CLAIMS.items():
            rows.append(
                _cost_row(
                    label,
                    per_seed(block, spec.claimant, key),
                    per_seed(block, spec.baseline, key),
                    spec.baseline,
                    unit,
                    scale,
                    spec.cost_factor,
                )
            )
        rows.append(_retraining_row(block, spec, acc))
        rows += _space_rows(block, spec, acc)
        rows += budget_rows(block, spec, acc)
        frame = pd.DataFrame([{"seeds to decide": "-"} | r for r in rows])
        frame.insert(0, "partition", partition)
        frame.insert(0, "dataset", dataset)
        frame.attrs["seeds"] = int(block[block["run"] == spec.claimant]["seed"].nunique())
        frame.attrs["factor"] = spec.cost_factor
        tables.append(frame)
    return tables


def _retraining_row(block: pd.DataFrame, spec: VerdictSpec, acc: dict[str, pd.Series]) -> dict:
    """The claimant's child is deployed as searched: one stage, against the baseline's."""
    stages = int(block[block["run"] == spec.claimant]["stages_count"].max())
    baseline = int(block[block["run"] == spec.baseline]["stages_count"].max())
    return structure_row(
        "no retraining: one stage, the child keeps the search's weights",
        f"{stages} stage(s); {pm(acc[spec.claimant].to_numpy())} %",
        HOLDS if stages == 1 else FAILS,
        against=f"{spec.baseline}: {baseline} stage(s)",
    )


def _space_rows(block: pd.DataFrame, spec: VerdictSpec, acc: dict[str, pd.Series]) -> list[dict]:
    """The searched child against its space's fixed network and its random networks."""
    present, rows = set(block["run"]), []
    if spec.fixed and spec.fixed in present:
        rows.append(
            accuracy_row(
                f"searched child beats its space's fixed network ({spec.fixed})",
                acc[spec.claimant],
                acc[spec.fixed],
                spec.claimant,
                spec.fixed,
            )
        )
    members = [r for r in (spec.random or []) if r in present]
    if members:
        row = accuracy_row(
            f"searched child beats the mean of {len(members)} random networks of its space",
            acc[spec.claimant],
            _random_mean(block, members),
            spec.claimant,
            "random mean",
        )
        means = np.array([acc[r].mean() for r in members])
        below = (means < acc[spec.claimant].mean()).sum()
        row["per seed"] += f"; mean above {below} of {len(members)} random networks"
        rows.append(row)
    return rows


def spec_from_config(verdict: dict, arch_groups: dict[str, list[str]]) -> VerdictSpec:
    """The config's ``verdict`` block; ``random`` names a run with ``arch_seeds``."""
    random = verdict.get("random")
    return VerdictSpec(
        claimant=verdict["claimant"],
        baseline=verdict["baseline"],
        fixed=verdict.get("fixed"),
        random=arch_groups.get(random, [random]) if random else None,
        cost_factor=float(verdict.get("cost_factor", 10.0)),
        unconstrained=verdict.get("unconstrained"),
    )


SHOWN = [
    "dataset",
    "partition",
    "claim",
    "claimant",
    "against",
    "paired difference",
    "per seed",
    "verdict",
    "seeds to decide",
]


def write_verdict(tables: list[pd.DataFrame], csv: Path, md: Path) -> None:
    """CSV (one row per setting and claim) and Markdown (a table per setting)."""
    frame = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=SHOWN)
    with atomic_path(csv) as tmp:
        frame[SHOWN].to_csv(tmp, index=False)
    parts = []
    for t in tables:
        n = t.attrs["seeds"]
        head = f"### {t['dataset'].iloc[0]} / {t['partition'].iloc[0]} ({n} seed{'s' * (n != 1)})"
        parts.append(head + "\n\n" + t[SHOWN[2:]].to_markdown(index=False))
    note = (
        "\n\nAccuracy in % (mean ± std over seeds); paired differences in percentage points "
        "per seed (same seed, partition and client stream), 95 % t-interval over seeds: "
        f"'{HOLDS}' when it lies above 0, '{FAILS}' below, '{UNCLEAR}' when it straddles 0. "
        "Cost claims: the baseline's cost over the claimant's per seed; the claim holds "
        "when every seed reaches the factor. Seeds to decide (a row that cannot tell): how "
        f"many seeds a paired t-test would need to exclude 0 with {POWER:.0%} power, were "
        "the true difference and spread those observed (noncentral t; a planning figure).\n"
    )
    with atomic_path(md) as tmp:
        Path(tmp).write_text("\n\n".join(parts) + note if parts else "no setting has both runs\n")
