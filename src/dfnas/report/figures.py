"""The comparison figures, from runs that follow the result contract (PNG and PDF each);
a method's own per-run figure lives beside its method (DFNAS: ``methods.dfnas.figure``)::

accuracy_curves(runs, "results/digits/figures/accuracy_per_round")
accuracy_vs_compute(runs, table, "results/digits/figures/accuracy_vs_compute")
resource_bars(runs, "results/digits/figures/resources")
personalized_distribution(runs, "results/digits/figures/personalized")
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from dfnas.plotting import plt, save
from dfnas.report.curves import compute_curve, history


def accuracy_curves(runs: pd.DataFrame, stem: str | Path) -> list[Path]:
    frames = []
    for row in runs.itertuples():
        h = history(row.run_dir)
        h = h[h["test_accuracy"].notna()]
        frames.append(
            pd.DataFrame(
                {
                    "round": h["round"],
                    "accuracy": h["test_accuracy"],
                    "run": row.run,
                    "setting": f"{row.dataset} / {row.partition}",
                    "seed": row.seed,
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    grid = sns.relplot(
        data=data,
        x="round",
        y="accuracy",
        hue="run",
        col="setting",
        kind="line",
        errorbar="sd",
        height=3,
        aspect=1.2,
        facet_kws={"sharey": False},
    )
    grid.set_axis_labels("round", "global test accuracy")
    grid.set_titles("{col_name}")
    return save(grid.figure, stem)


def accuracy_vs_compute(runs: pd.DataFrame, table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Each method's accuracy over its rounds against the client compute spent so far
    (mean and band of one std over seeds; a two-stage method's search comes first), with
    the table's matched-compute budget (dashed) and target accuracy (dotted)."""
    settings = list(runs.groupby(["dataset", "partition"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings), 3.6), squeeze=False)
    palette = dict(zip(sorted(runs["run"].unique()), sns.color_palette(), strict=False))
    for ax, ((dataset, part), block) in zip(axes[0], settings, strict=True):
        for run, rows in block.groupby("run"):
            seeds = [
                compute_curve(r.run_dir, str(r.device).startswith("cuda")).set_index("round")
                for r in rows.itertuples()
            ]
            seeds = [c for c in seeds if len(c)]
            if not seeds:
                continue
            both = pd.concat(seeds, keys=range(len(seeds))).groupby(level="round")
            x, acc, sd = (
                both["flops"].mean() * 1e-12,
                both["accuracy"].mean(),
                both["accuracy"].std(ddof=0),
            )
            color = palette[run]
            ax.plot(x, acc, marker=".", color=color, label=run)
            ax.fill_between(x, acc - sd.fillna(0), acc + sd.fillna(0), color=color, alpha=0.2)
        rows = table[(table["dataset"] == dataset) & (table["partition"] == part)]
        if "budget_TFLOPs" in rows and rows["budget_TFLOPs"].notna().any():
            ax.axvline(rows["budget_TFLOPs"].dropna().iloc[0], color="grey", ls="--", lw=1)
            ax.axhline(rows["target_acc"].dropna().iloc[0], color="grey", ls=":", lw=1)
        _log_axis(ax, "x")
        ax.set_xlabel("cumulative client training compute (TFLOPs, log)")
        ax.set_ylabel("global test accuracy")
        ax.set_title(f"{dataset} / {part}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, stem)


def _log_axis(ax: plt.Axes, which: str) -> None:
    """Log scale with plain decade labels only: matplotlib's minor-tick labels
    ("3x10^-2 4x10^-2") overlap when the range is short."""
    getattr(ax, f"set_{which}scale")("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=True))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def resource_bars(runs: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Training compute, communication and client time per method, log scale, search
    stage stacked under the train stage."""
    rows = []
    for row in runs.itertuples():
        stages = json.loads((Path(row.run_dir) / "metrics.json").read_text()).get("stages", {})
        for stage, s in (stages or {"train": {}}).items():
            rows.append(
                {
                    "run": row.run,
                    "setting": f"{row.dataset} / {row.partition}",
                    "stage": stage,
                    "train TFLOPs": s.get("train_flops", row.train_flops) / 1e12,
                    "communication MB": (
                        s.get("bytes_down", row.bytes_down) + s.get("bytes_up", row.bytes_up)
                    )
                    / 1e6,
                    "client seconds": s.get("client_seconds", row.client_seconds),
                }
            )
    data = pd.DataFrame(rows).groupby(["setting", "run", "stage"]).mean().reset_index()
    metrics = ["train TFLOPs", "communication MB", "client seconds"]
    settings = sorted(data["setting"].unique())
    fig, axes = plt.subplots(len(settings), 3, figsize=(13, 3.2 * len(settings)), squeeze=False)
    # a run's phases in the order they happen (search before train), stacked in that order
    phases = list(dict.fromkeys(["search", "train", *data["stage"]]))
    colors = dict(zip(phases, ["#dd8452", "#4c72b0", *sns.color_palette()[2:]], strict=False))
    for r, setting in enumerate(settings):
        block = data[data["setting"] == setting]
        names = sorted(block["run"].unique())
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            bottom = np.zeros(len(names))
            for stage in phases:
                vals = [
                    float(block[(block["run"] == m) & (block["stage"] == stage)][metric].sum())
                    for m in names
                ]
                ax.barh(names, vals, left=bottom, color=colors[stage], label=stage)
                bottom += np.array(vals)
            _log_axis(ax, "x")
            ax.set_xlabel(f"{metric} (log)")
            ax.set_title(setting if c == 0 else "")
        axes[r, 0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return save(fig, stem)


def personalized_distribution(runs: pd.DataFrame, stem: str | Path) -> list[Path]:
    frames = []
    for row in runs.itertuples():
        path = Path(row.run_dir) / "personalized.csv"
        if path.exists() and path.stat().st_size > 1:
            p = pd.read_csv(path)
            p["run"], p["setting"] = row.run, f"{row.dataset} / {row.partition}"
            frames.append(p)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if frames:
        data = pd.concat(frames, ignore_index=True)
        sns.boxplot(
            data=data, x="run", y="accuracy_personalized", hue="setting", ax=ax, fliersize=0
        )
        # seaborn 0.13 jitters the points with numpy's global generator, unseeded, so
        # the same results drew a different figure each time: seed it here, and put the
        # caller's generator back afterwards
        state = np.random.get_state()
        np.random.seed(0)
        sns.stripplot(
            data=data,
            x="run",
            y="accuracy_personalized",
            hue="setting",
            ax=ax,
            dodge=True,
            size=2.5,
            palette="dark:black",  # every point black (color= with hue is deprecated)
            legend=False,
        )
        np.random.set_state(state)
        ax.tick_params(axis="x", rotation=30)
    ax.set_ylabel("personalized accuracy per client")
    fig.tight_layout()
    return save(fig, stem)


# every comparison figure, by the file stem dfnas.report.FIGURES names: (runs, table, stem)
DRAW = {
    "accuracy_per_round": lambda runs, table, stem: accuracy_curves(runs, stem),
    "accuracy_vs_compute": accuracy_vs_compute,
    "resources": lambda runs, table, stem: resource_bars(runs, stem),
    "personalized": lambda runs, table, stem: personalized_distribution(runs, stem),
}
