"""Reading per-seed numbers into a verdict, shared by every row of the verdict table.

Accuracy claims are read from paired per-seed differences (same seed, same partition,
same client stream), with a 95 % t-interval over seeds: holds when it lies above zero,
does not hold below, cannot tell when it straddles zero or there are fewer than three
seeds. Cost claims are ratios (baseline / claimant) per seed: the claim holds when every
seed's ratio reaches the factor, does not hold when none does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "cannot tell at this budget"


@dataclass(frozen=True)
class VerdictSpec:
    """Which runs the claims compare; see the config's ``verdict`` key."""

    claimant: str  # the one-stage search (DFNAS)
    baseline: str  # the two-stage search it claims to beat (FedNAS)
    fixed: str | None = None  # the hand-designed network of the claimant's space
    random: list[str] | None = None  # runs of random networks of the claimant's space
    cost_factor: float = 10.0  # "an order of magnitude"
    # the claimant's search without its device budget: what the budget costs
    unconstrained: str | None = None


def paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, float, float, float]:
    """Per-seed differences a - b over the seeds both have; mean and 95 % t-interval."""
    seeds = sorted(set(a.index) & set(b.index))
    d = np.array([a[s] - b[s] for s in seeds], dtype=float)
    if d.size < 2:
        mean = float(d.mean()) if d.size else np.nan
        return d, mean, np.nan, np.nan
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return d, float(d.mean()), float(d.mean() - half), float(d.mean() + half)


MIN_SEEDS = 3
# "how many seeds would decide": the seeds a paired t-test needs to exclude zero with
# this probability, were the true difference and spread what the seeds show
POWER = 0.8
MOST_SEEDS = 100


def seeds_to_decide(d: np.ndarray, power: float = POWER) -> int | None:
    """Seeds for a two-sided 95 % paired t-test to tell the observed mean difference from
    zero with ``power`` (noncentral t), if the difference and its spread stay as observed;
    None beyond ``MOST_SEEDS`` (a difference this small against its spread is no
    difference a seed budget can show). A planning figure, not a verdict: the observed
    effect of a few seeds is itself uncertain."""
    if d.size < 2:
        return None
    sd = d.std(ddof=1)
    if sd == 0:
        return max(d.size, MIN_SEEDS) if d.mean() != 0 else None
    effect = abs(d.mean()) / sd
    for n in range(MIN_SEEDS, MOST_SEEDS + 1):
        crit = stats.t.ppf(0.975, n - 1)
        nc = effect * np.sqrt(n)
        if stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc) >= power:
            return n
    return None


def difference_verdict(lo: float, hi: float, n: int) -> str:
    if n < MIN_SEEDS or np.isnan(lo) or np.isnan(hi):
        return UNCLEAR
    if lo > 0:
        return HOLDS
    if hi < 0:
        return FAILS
    return UNCLEAR


def ratio_verdict(ratios: np.ndarray, factor: float) -> str:
    ratios = ratios[~np.isnan(ratios)]
    if ratios.size == 0:
        return UNCLEAR
    if (ratios >= factor).all():
        return HOLDS
    if (ratios < factor).all():
        return FAILS
    return UNCLEAR


def pm(values: np.ndarray, scale: float = 100.0, digits: int = 2) -> str:
    if values.size == 0:
        return "n/a"
    std = values.std(ddof=0)  # as the comparison table prints it
    return f"{values.mean() * scale:.{digits}f} ± {std * scale:.{digits}f}"


def per_seed(runs: pd.DataFrame, run: str, key: str) -> pd.Series:
    rows = runs[runs["run"] == run]
    return rows.set_index("seed")[key].astype(float)


def accuracy_row(claim: str, a: pd.Series, b: pd.Series, a_name: str, b_name: str) -> dict:
    d, mean, lo, hi = paired(a, b)
    return {
        "claim": claim,
        "short": f"accuracy vs {b_name}",
        "claimant": pm(a.to_numpy()),
        "against": f"{b_name}: {pm(b.to_numpy())}",
        "paired difference": (
            f"{100 * mean:+.2f} (95 % CI {100 * lo:+.2f} to {100 * hi:+.2f}) pp"
            if d.size > 1
            else (f"{100 * mean:+.2f} pp (one seed)" if d.size else "n/a")
        ),
        "per seed": ", ".join(f"{100 * v:+.2f}" for v in d),
        "verdict": (verdict := difference_verdict(lo, hi, d.size)),
        "seeds to decide": _to_decide(d) if verdict == UNCLEAR else "-",
        "kind": "accuracy",
        "values": d * 100,
        "interval": (100 * mean, 100 * lo, 100 * hi),  # the figure draws what the row says
    }


def _to_decide(d: np.ndarray) -> str:
    if d.size < 2:
        return "more than one seed to say"
    n = seeds_to_decide(d)
    return f"about {n} ({POWER:.0%} power)" if n else f"more than {MOST_SEEDS}"


def structure_row(
    claim: str, claimant: str, verdict: str, against: str = "-", per_seed: str = ""
) -> dict:
    """A row read from what the runs are (stages, health, budgets), with no per-seed
    difference or ratio to draw."""
    return {
        "claim": claim,
        "claimant": claimant,
        "against": against,
        "paired difference": "-",
        "per seed": per_seed,
        "verdict": verdict,
        "kind": "structure",
        "values": np.array([]),
    }
