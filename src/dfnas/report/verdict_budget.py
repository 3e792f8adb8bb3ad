"""The device-budget rows of the verdict: the paper's "the target device is an input".

A budget is a claim only where it binds and the comparison stays inside it. So, when the
claimant searched under a MAC budget, the table reads four things from the runs: the
child meets the budget on every seed; the fixed and random networks it is compared with
meet the same budget (otherwise the space rows compare a constrained child with
unconstrained networks); the budget binds (the same search without it, the config's
``verdict.unconstrained``, derives a child over it) and what it costs in accuracy, seed
for seed; and the baseline's network beside the budget, which FedNAS has no mechanism to
honour. Without a budget there is one row, which says so.
"""

from __future__ import annotations

import pandas as pd

from dfnas.report.verdict_rows import (
    FAILS,
    HOLDS,
    VerdictSpec,
    accuracy_row,
    structure_row,
)

NOT_TESTED = "not tested here"


def budget_rows(block: pd.DataFrame, spec: VerdictSpec, acc: dict[str, pd.Series]) -> list[dict]:
    """The rows above for one dataset x partition (``block``: report.collect's runs)."""
    rows = [_honoured_row(block, spec)]
    limits = block.loc[block["run"] == spec.claimant, "budget_macs"].dropna()
    if limits.empty:
        return rows
    limit = float(limits.max())
    present = set(block["run"])
    rows.append(_controls_row(block, spec, limit))
    if spec.unconstrained and spec.unconstrained in present:
        rows.append(_binds_row(block, spec.unconstrained, limit))
        row = accuracy_row(
            f"the budget costs no accuracy: the child at least {spec.unconstrained}'s",
            acc[spec.claimant],
            acc[spec.unconstrained],
            spec.claimant,
            spec.unconstrained,
        )
        row["short"] = "accuracy vs unconstrained search"
        rows.append(row)
    if spec.baseline in present:
        rows.append(_baseline_row(block, spec.baseline, limit))
    return rows


def _mmacs(values: pd.Series) -> str:
    lo, hi = values.min() / 1e6, values.max() / 1e6
    return f"{lo:.3f} M" if lo == hi else f"{lo:.3f}-{hi:.3f} M"


def _budget(limit: float) -> str:
    return f"budget {limit / 1e6:.3f} M MACs"


def _honoured_row(block: pd.DataFrame, spec: VerdictSpec) -> dict:
    """Every run of the claimant's method that had a budget (devices: its device runs)."""
    method = block[block["run"] == spec.claimant]["method"].iloc[0]
    budgeted = block[(block["method"] == method) & block["within_budget"].notna()]
    if budgeted.empty:
        return structure_row("device budget honoured", "no budget set in this config", NOT_TESTED)
    within = budgeted["within_budget"].astype(bool)
    limits = budgeted["budget_macs"].dropna()
    claimant = f"{int(within.sum())} of {len(within)} budgeted runs x seeds within"
    if not limits.empty:
        claimant += f"; child {_mmacs(budgeted['macs'])} MACs"
    against = f"budget {_mmacs(limits)} MACs" if not limits.empty else "-"
    over = "; ".join(f"{r.run} seed {r.seed}" for r in budgeted[~within].itertuples())
    verdict = HOLDS if within.all() else FAILS
    return structure_row("device budget honoured", claimant, verdict, against, over)


def _controls_row(block: pd.DataFrame, spec: VerdictSpec, limit: float) -> dict:
    """The space rows compare like with like only if the controls fit the budget too."""
    names = [n for n in [spec.fixed, *(spec.random or [])] if n]
    rows = block[block["run"].isin(names)]
    claim = "the fixed and random networks compared meet the same budget"
    if rows.empty:
        return structure_row(claim, "no fixed or random networks in this config", NOT_TESTED)
    parts = []
    if spec.fixed and spec.fixed in set(rows["run"]):
        parts.append(f"{spec.fixed}: {_mmacs(rows[rows['run'] == spec.fixed]['macs'])}")
    randoms = rows[rows["run"] != spec.fixed]
    if not randoms.empty:
        parts.append(f"{randoms['run'].nunique()} random: {_mmacs(randoms['macs'])}")
    over = rows[rows["macs"] > limit]
    return structure_row(
        claim,
        "; ".join(parts) + " MACs",
        FAILS if len(over) else HOLDS,
        _budget(limit),
        ", ".join(sorted(set(over["run"]))) + (" over it" if len(over) else ""),
    )


def _binds_row(block: pd.DataFrame, unconstrained: str, limit: float) -> dict:
    """A budget no unconstrained child exceeds constrains nothing: its rows would
    measure a search, not a budget. Whether a child is over it is a fact per seed, not an
    estimate: seeds that differ are counted, not called uncertain."""
    rows = block[block["run"] == unconstrained].sort_values("seed")
    over = rows["macs"] > limit
    k, n = int(over.sum()), len(over)
    verdict = HOLDS if k == n else (FAILS if k == 0 else f"holds on {k} of {n} seeds")
    return structure_row(
        f"the budget binds: {unconstrained}'s child is over it",
        f"{unconstrained}: {_mmacs(rows['macs'])} MACs, over the budget on {k} of {n} seeds",
        verdict,
        _budget(limit),
        ", ".join(f"{m / 1e6:.3f}" for m in rows["macs"]),
    )


def _baseline_row(block: pd.DataFrame, baseline: str, limit: float) -> dict:
    rows = block[block["run"] == baseline].sort_values("seed")
    over = int((rows["macs"] > limit).sum())
    return structure_row(
        f"{baseline}'s network beside the budget (it has no budget mechanism)",
        f"{baseline}: {_mmacs(rows['macs'])} MACs, over the budget on {over} of {len(rows)} seeds",
        "no budget to honour",
        _budget(limit),
        ", ".join(f"{m / 1e6:.3f}" for m in rows["macs"]),
    )
