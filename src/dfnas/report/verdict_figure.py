"""The verdict table drawn: each accuracy claim's paired differences per seed with the
interval its row computed, each cost claim's ratios per seed against the claimed factor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dfnas.io import atomic_path
from dfnas.report.verdict_rows import FAILS, HOLDS, UNCLEAR


def verdict_figure(tables: list[pd.DataFrame], stem: Path) -> None:
    """Left: paired accuracy differences per seed, with their 95 % interval; right: cost
    ratios per seed on a log axis, with the claimed factor as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["dataset", "partition", "kind", "short", "verdict", "values"])
    )
    height = (
        max(int((frame["kind"] == k).sum()) for k in ("accuracy", "ratio")) if len(frame) else 1
    )
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, 1.2 + 0.45 * max(1, height)), gridspec_kw={"wspace": 1.6}
    )
    colour = {HOLDS: "tab:green", FAILS: "tab:red", UNCLEAR: "tab:grey"}
    for ax, kind in ((left, "accuracy"), (right, "ratio")):
        rows = frame[frame["kind"] == kind]
        for i, r in enumerate(rows.itertuples()):
            vals = np.asarray(r.values, dtype=float)
            ax.scatter(vals, [i] * len(vals), color=colour.get(r.verdict, "k"), zorder=3)
            if kind == "accuracy" and len(vals) > 1:
                mean, lo, hi = r.interval
                ax.errorbar(
                    mean,
                    i,
                    xerr=[[mean - lo], [hi - mean]],
                    fmt="|",
                    color=colour.get(r.verdict, "k"),
                    capsize=4,
                )
            ax.text(
                1.0, i, f" {r.verdict}", transform=ax.get_yaxis_transform(), va="center", fontsize=8
            )
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(
            [f"{r.dataset}/{r.partition}: {r.short}" for r in rows.itertuples()], fontsize=8
        )
        ax.invert_yaxis()
    left.axvline(0, color="k", lw=0.8)
    left.set_xlabel("paired accuracy difference per seed (pp)")
    if tables:
        right.axvline(float(tables[0].attrs["factor"]), color="k", lw=0.8, ls="--")
    right.set_xscale("log")
    right.set_xlabel("baseline cost / claimant cost per seed (log)")
    left.set_title("accuracy claims (green: holds, red: does not, grey: cannot tell)", fontsize=9)
    right.set_title("cost claims: how many times cheaper the claimant is", fontsize=9)
    for ext in ("png", "pdf"):
        with atomic_path(Path(f"{stem}.{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
    plt.close(fig)
