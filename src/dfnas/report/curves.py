"""Each run's accuracy as a function of the client compute spent so far, and the two
matched-compute readings of the paper's claim ("the same accuracy for less compute")::

    curve = compute_curve(run_dir, on_gpu=False)
    accuracy_at(curve, flops=2e12)       # accuracy of the last evaluated round within 2 TFLOPs
    compute_to_reach(curve, accuracy=0.9)  # (FLOPs, seconds) when 90 % was first reached

A two-stage run's search rounds come first, so FedNAS's curve starts with the search it
paid for before its train stage could begin.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

# the table's default target: this share of the best final accuracy of the comparison
TARGET_FRACTION = 0.9


def history(run_dir: str | Path) -> pd.DataFrame:
    """The run's per-round history with rounds numbered from 1 across its stages (the
    folders of earlier stages are listed in metrics.json's ``prior_stages``); empty for an
    external run that writes only metrics.json."""
    metrics = Path(run_dir) / "metrics.json"
    earlier = json.loads(metrics.read_text()).get("prior_stages", []) if metrics.exists() else []
    parts, offset = [], 0
    for rel in [*(Path(s) / "history.csv" for s in earlier), Path("history.csv")]:
        path = Path(run_dir) / rel
        if path.exists():
            h = pd.read_csv(path)
            h["round"] = h["round"] + offset + 1
            offset = int(h["round"].max())
            parts.append(h)
    if not parts:
        return pd.DataFrame({"round": [], "test_accuracy": []})
    return pd.concat(parts, ignore_index=True)


def compute_curve(run_dir: str | Path, on_gpu: bool = False) -> pd.DataFrame:
    """Per evaluated round: cumulative client training FLOPs and client seconds (CPU
    seconds on CPU, device seconds on a GPU, as in the table's compute_h), and accuracy."""
    h = history(run_dir) if run_dir else pd.DataFrame()
    if h.empty or "train_flops" not in h:
        return pd.DataFrame(columns=["round", "flops", "seconds", "accuracy"])
    seconds = "client_seconds" if on_gpu or "client_cpu_seconds" not in h else "client_cpu_seconds"
    curve = pd.DataFrame(
        {
            "round": h["round"],
            "flops": h["train_flops"].cumsum(),
            "seconds": h[seconds].cumsum(),
            "accuracy": h["test_accuracy"],
        }
    )
    return curve[curve["accuracy"].notna()].reset_index(drop=True)


def accuracy_at(curve: pd.DataFrame, flops: float) -> float:
    """Accuracy of the last evaluated round whose cumulative FLOPs are within ``flops``
    (NaN when even the first evaluation cost more)."""
    within = curve[curve["flops"] <= flops * (1 + 1e-9)]
    return float(within["accuracy"].iloc[-1]) if len(within) else float("nan")


def compute_to_reach(curve: pd.DataFrame, accuracy: float) -> tuple[float, float]:
    """(cumulative FLOPs, seconds) at the first evaluated round reaching ``accuracy``;
    (NaN, NaN) when the run never reached it."""
    hit = curve[curve["accuracy"] >= accuracy]
    if hit.empty:
        return float("nan"), float("nan")
    first = hit.iloc[0]
    return float(first["flops"]), float(first["seconds"])


def matched_compute(
    runs: pd.DataFrame,
    target_fraction: float = TARGET_FRACTION,
    target_accuracy: float | None = None,
) -> pd.DataFrame:
    """Per run (one row of ``runs``, from collect.load_runs): its accuracy at the budget of
    the cheapest method of its dataset x partition (NaN where its first evaluation cost
    more, as a two-stage search can), and the compute it needed to first reach the
    target. The budget is the smallest mean total client FLOPs of a method with a
    history; the target is ``target_accuracy`` or ``target_fraction`` of the best mean
    final accuracy of the comparison."""
    out = runs[["dataset", "partition", "run", "seed"]].copy()
    out["budget_flops"] = out["target_accuracy"] = np.nan
    out["accuracy_at_budget"] = out["flops_to_target"] = out["seconds_to_target"] = np.nan
    out["has_curve"] = False
    curves = {
        i: compute_curve(row.get("run_dir") or "", str(row.get("device", "")).startswith("cuda"))
        for i, row in runs.iterrows()
    }
    for _, block in runs.groupby(["dataset", "partition"]):
        totals = {
            run: np.mean([curves[i]["flops"].iloc[-1] for i in rows.index])
            for run, rows in block.groupby("run")
            if all(len(curves[i]) for i in rows.index)
        }
        if not totals:
            continue
        budget = min(totals.values())
        best = block.groupby("run")["accuracy"].mean().max()
        target = target_accuracy if target_accuracy is not None else target_fraction * best
        for i in block.index:
            out.loc[i, ["budget_flops", "target_accuracy"]] = budget, target
            if len(curves[i]):
                out.loc[i, "has_curve"] = True
                out.loc[i, "accuracy_at_budget"] = accuracy_at(curves[i], budget)
                flops, seconds = compute_to_reach(curves[i], target)
                out.loc[i, ["flops_to_target", "seconds_to_target"]] = flops, seconds
    return out
