"""The paper's claims, one per row, each with its measured numbers and a verdict.

DFNAS (arXiv 2010.06223) claims, against FedNAS: slightly better accuracy; an order of
magnitude less client compute, memory and communication; a child ready to deploy with no
retraining; and a child that fits the target device. A NAS result also owes the reader the
control every NAS reviewer asks for: does the searched child beat its own space's fixed
and random networks trained the same way? The config names the runs (``verdict:``), so
this module never guesses which run is which.

Accuracy claims are read from paired per-seed differences (same seed, same partition,
same client stream), with a 95 % t-interval over seeds:

- holds: the interval lies above zero;
- does not hold: it lies below zero;
- cannot tell at this budget: it straddles zero, or there are fewer than three seeds
  (two seeds' interval is too wide to mean anything, or a point when both agree).

Cost claims are ratios (baseline / claimant) per seed: the claim holds when every seed's
ratio reaches the factor (10 for "an order of magnitude"), does not hold when none does.
The numbers are what the table prints; the verdict is a reading of them, never a
replacement.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from dfnas.io import atomic_path

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "cannot tell at this budget"

# cost claims: label -> (key of a collected run, unit scale, unit)
COST_CLAIMS = {
    "client compute (training FLOPs)": ("train_flops", 1e-12, "TFLOPs"),
    "client compute (CPU time)": ("compute_seconds", 1 / 3600, "CPU h"),
    "client memory": ("client_memory_bytes", 1e-6, "MB"),
    "communication": ("comm_bytes", 1e-6, "MB"),
}


@dataclass(frozen=True)
class VerdictSpec:
    """Which runs the claims compare; see the config's ``verdict`` key."""

    claimant: str  # the one-stage search (DFNAS)
    baseline: str  # the two-stage search it claims to beat (FedNAS)
    fixed: str | None = None  # the hand-designed network of the claimant's space
    random: list[str] | None = None  # runs of random networks of the claimant's space
    cost_factor: float = 10.0  # "an order of magnitude"


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


def _pm(values: np.ndarray, scale: float = 100.0, digits: int = 2) -> str:
    if values.size == 0:
        return "n/a"
    std = values.std(ddof=0)  # as the comparison table prints it
    return f"{values.mean() * scale:.{digits}f} ± {std * scale:.{digits}f}"


def _per_seed(runs: pd.DataFrame, run: str, key: str) -> pd.Series:
    rows = runs[runs["run"] == run]
    return rows.set_index("seed")[key].astype(float)


def _random_mean(runs: pd.DataFrame, members: list[str]) -> pd.Series:
    """Per seed, the mean accuracy of the random architectures: the paired partner of a
    searched child is the space's average random network under the same seed."""
    rows = runs[runs["run"].isin(members)]
    return rows.groupby("seed")["accuracy"].mean()


def _accuracy_row(claim: str, a: pd.Series, b: pd.Series, a_name: str, b_name: str) -> dict:
    d, mean, lo, hi = paired(a, b)
    return {
        "claim": claim,
        "short": f"accuracy vs {b_name}",
        "claimant": _pm(a.to_numpy()),
        "against": f"{b_name}: {_pm(b.to_numpy())}",
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


def _cost_row(
    claim: str, a: pd.Series, b: pd.Series, b_name: str, unit: str, scale: float, factor: float
) -> dict:
    seeds = sorted(set(a.index) & set(b.index))
    ratios = np.array([b[s] / a[s] if a[s] else np.nan for s in seeds], dtype=float)
    return {
        "claim": f"{claim}: {factor:g}x less than {b_name}",
        "short": claim.replace("client compute ", "compute "),
        "claimant": f"{_pm(a.to_numpy(), scale, 4)} {unit}",
        "against": f"{b_name}: {_pm(b.to_numpy(), scale, 4)} {unit}",
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
    return {
        "claim": "precondition: every search left chance and moved its alpha",
        "short": "searches healthy",
        "claimant": f"{len(rows) - len(flagged)} of {len(rows)} searches healthy",
        "against": "-",
        "paired difference": "-",
        "per seed": "; ".join(
            f"{r.run} seed {r.seed}: {r.search_warnings}" for r in flagged.itertuples()
        ),
        "verdict": HOLDS if flagged.empty else FAILS,
        "kind": "structure",
        "values": np.array([]),
    }


def verdict_table(runs: pd.DataFrame, spec: VerdictSpec) -> list[pd.DataFrame]:
    """One table per dataset x partition: a row per claim. ``runs`` is
    ``report.collect.load_runs``'s frame (one row per run and seed)."""
    tables = []
    for (dataset, partition), block in runs.groupby(["dataset", "partition"], sort=True):
        present = set(block["run"])
        if spec.claimant not in present or spec.baseline not in present:
            continue
        acc = {r: _per_seed(block, r, "accuracy") for r in present}
        rows = [_health_row(block, [spec.claimant, spec.baseline])]
        rows += [
            _accuracy_row(
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
                    _per_seed(block, spec.claimant, key),
                    _per_seed(block, spec.baseline, key),
                    spec.baseline,
                    unit,
                    scale,
                    spec.cost_factor,
                )
            )
        rows.append(_retraining_row(block, spec, acc))
        rows += _space_rows(block, spec, acc)
        rows.append(_budget_row(block, spec))
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
    return {
        "claim": "no retraining: one stage, the child keeps the search's weights",
        "claimant": f"{stages} stage(s); {_pm(acc[spec.claimant].to_numpy())} %",
        "against": f"{spec.baseline}: {baseline} stage(s)",
        "paired difference": "-",
        "per seed": "",
        "verdict": HOLDS if stages == 1 else FAILS,
        "kind": "structure",
        "values": np.array([]),
    }


def _space_rows(block: pd.DataFrame, spec: VerdictSpec, acc: dict[str, pd.Series]) -> list[dict]:
    """The searched child against its space's fixed network and its random networks."""
    present, rows = set(block["run"]), []
    if spec.fixed and spec.fixed in present:
        rows.append(
            _accuracy_row(
                f"searched child beats its space's fixed network ({spec.fixed})",
                acc[spec.claimant],
                acc[spec.fixed],
                spec.claimant,
                spec.fixed,
            )
        )
    members = [r for r in (spec.random or []) if r in present]
    if members:
        row = _accuracy_row(
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


def _budget_row(block: pd.DataFrame, spec: VerdictSpec) -> dict:
    """Every run of the claimant's method that had a budget (devices: its device runs)."""
    method = block[block["run"] == spec.claimant]["method"].iloc[0]
    within = block.loc[block["method"] == method, "within_budget"].dropna()
    return {
        "claim": "device budget honoured",
        "claimant": (
            "no budget set in this config"
            if within.empty
            else f"{int(within.astype(bool).sum())} of {len(within)} budgeted runs x seeds within"
        ),
        "against": "-",
        "paired difference": "-",
        "per seed": "",
        "verdict": (
            "not tested here" if within.empty else (HOLDS if within.astype(bool).all() else FAILS)
        ),
        "kind": "structure",
        "values": np.array([]),
    }


def spec_from_config(verdict: dict, arch_groups: dict[str, list[str]]) -> VerdictSpec:
    """The config's ``verdict`` block; ``random`` names a run with ``arch_seeds``."""
    random = verdict.get("random")
    return VerdictSpec(
        claimant=verdict["claimant"],
        baseline=verdict["baseline"],
        fixed=verdict.get("fixed"),
        random=arch_groups.get(random, [random]) if random else None,
        cost_factor=float(verdict.get("cost_factor", 10.0)),
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
        head = f"### {t['dataset'].iloc[0]} / {t['partition'].iloc[0]} ({t.attrs['seeds']} seeds)"
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
