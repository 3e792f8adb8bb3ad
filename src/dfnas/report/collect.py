"""Read every run that follows the result contract into one table, and write the
comparison as CSV, Markdown and LaTeX::

    runs = load_runs(["results/digits/runs/digits/iid/dfnas/seed0/metrics.json", ...])
    table = comparison(runs, reference="dfnas")

A run is found by its metrics.json alone, so a baseline added as a standalone rule (even
one that shells out to another tool) shows up here as soon as it writes the contract.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dfnas.errors import DfnasError
from dfnas.io import atomic_path
from dfnas.methods import METHODS
from dfnas.report.curves import TARGET_FRACTION, matched_compute
from dfnas.report.random_archs import RANDOM_METHOD, add_random_distribution
from dfnas.results import REQUIRED_METRICS

# column in the table -> (key of a collected run, scale); every column is a mean over seeds
COSTS = {
    "train_TFLOPs": ("train_flops", 1e-12),
    "comm_MB": ("comm_bytes", 1e-6),
    # one client's training memory (cost.memory): parameters, gradients, optimizer
    # state and saved activations of its largest measured step
    "client_mem_MB": ("client_memory_bytes", 1e-6),
    # the whole simulating process (torch, dataset, every client): not a device's figure
    "process_peak_MB": ("peak_memory_bytes", 1e-6),
    "wall_min": ("wall_seconds", 1 / 60),
    "compute_h": ("compute_seconds", 1 / 3600),
}


def load_runs(paths: list[str | Path]) -> pd.DataFrame:
    """One row per run and seed; dataset, partition, run and seed come from the path
    .../<dataset>/<partition>/<run>/seed<k>/metrics.json, the method from the file."""
    rows = []
    for path in map(Path, paths):
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DfnasError(f"{path}: not a readable metrics.json ({exc})") from None
        missing = [k for k in REQUIRED_METRICS if k not in m]
        if missing:
            raise DfnasError(f"{path}: metrics.json lacks {', '.join(missing)} (result contract)")
        seed_dir, run_dir = path.parent, path.parent.parent
        row = {
            "dataset": run_dir.parent.parent.name,
            "partition": run_dir.parent.name,
            "run": run_dir.name,
            "seed": int(seed_dir.name.removeprefix("seed")),
            "method": m["method"],
            "run_dir": str(seed_dir),
            **{k: m[k] for k in REQUIRED_METRICS if k != "method"},
        }
        row["comm_bytes"] = m["bytes_down"] + m["bytes_up"]
        row["client_memory_bytes"] = m.get("client_memory_bytes", np.nan)  # external: none
        # CPU hours on CPU, device hours on a GPU: the compute the clients consumed
        on_gpu = str(m.get("device", "cpu")).startswith("cuda")
        row["compute_seconds"] = (
            m["client_seconds"] if on_gpu else m.get("client_cpu_seconds", m["client_seconds"])
        )
        row["device"] = m.get("device", "")
        row["measured_on"] = measured_on(m)
        stages = m.get("stages", {})
        row["search_train_flops"] = stages.get("search", {}).get("train_flops", 0)
        # jobs of the method: a later job builds a fresh network (FedNAS retrains its
        # genotype from scratch); an external run counts as one
        row["stages_count"] = (
            len(METHODS.get(m["method"]).stages) if m["method"] in METHODS.names() else 1
        )
        # a device budget's verdict, only where the run had a budget to honour
        row["within_budget"] = m.get("within_budget") if m.get("budgets") else None
        row["budget_macs"] = m.get("budgets", {}).get("macs", {}).get("limit", np.nan)
        # the exported artifact, where the run was exported (deploy.export)
        export = seed_dir / "export" / "export.json"
        blob = json.loads(export.read_text()) if export.exists() else {}
        row["onnx_bytes"] = blob.get("bytes", np.nan)
        row["latency_ms"] = blob.get("latency_ms", np.nan)
        meets = blob.get("meets_latency_budget")
        row["meets_latency_budget"] = np.nan if meets is None else float(meets)
        # a search that ended near chance or with a uniform alpha (dfnas.search.health)
        row["search_warnings"] = "; ".join(m.get("search_warnings", []))
        rows.append(row)
    if not rows:
        raise DfnasError("no runs to collect: no metrics.json found")
    return pd.DataFrame(rows)


def comparison(
    runs: pd.DataFrame,
    reference: str | None = None,
    target_fraction: float = TARGET_FRACTION,
    target_accuracy: float | None = None,
    arch_groups: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Mean (and std over seeds) per dataset x partition x method, with every cost also
    as a ratio to the reference method (DFNAS by default) of the same dataset and
    partition, and the two matched-compute readings (report.curves): accuracy at the
    cheapest method's compute, and the compute needed to reach the target accuracy.
    ``arch_groups`` (group -> its runs, one per random architecture) adds each group's
    distribution and every row's percentile in it (``report.random_archs``)."""
    keys = ["dataset", "partition", "run"]
    g = runs.groupby(keys, sort=True)
    matched = matched_compute(runs, target_fraction, target_accuracy).groupby(keys, sort=True)
    table = pd.DataFrame(
        {
            "method": g["method"].first(),
            "seeds": g["seed"].nunique(),
            "accuracy": g["accuracy"].mean(),
            "accuracy_std": g["accuracy"].std(ddof=0),
            "personalized": g["personalized_accuracy_mean"].mean(),
            "personalized_std": g["personalized_accuracy_mean"].std(ddof=0),
            "params": g["params"].mean(),
            "MMACs": g["macs"].mean() / 1e6,
            "rounds": g["rounds"].mean(),
            # seeds whose search did not search: the row is then not a search result
            "unhealthy_seeds": g["search_warnings"].agg(lambda w: int((w != "").sum())),
        }
    )
    for col, (key, scale) in COSTS.items():
        table[col] = g[key].mean() * scale
    # the exported artifact (absent for runs not exported, or a frame built by hand)
    for col, key, scale in (
        ("onnx_kB", "onnx_bytes", 1e-3),
        ("latency_ms", "latency_ms", 1.0),
        # share of seeds whose exported child met its latency budget (nan: none set)
        ("latency_budget_met", "meets_latency_budget", 1.0),
    ):
        table[col] = g[key].mean() * scale if key in runs else np.nan
    table["budget_TFLOPs"] = matched["budget_flops"].first() * 1e-12
    table["acc_at_budget"] = matched["accuracy_at_budget"].mean()
    table["acc_at_budget_std"] = matched["accuracy_at_budget"].std(ddof=0)
    table["curve_seeds"] = matched["has_curve"].sum()
    table["target_acc"] = matched["target_accuracy"].first()
    # means over the seeds that reached the target; target_reached says how many did
    table["TFLOPs_to_target"] = matched["flops_to_target"].mean() * 1e-12
    table["compute_h_to_target"] = matched["seconds_to_target"].mean() / 3600
    table["target_reached"] = matched["flops_to_target"].count()
    table = table.reset_index()
    ref = reference or _default_reference(runs)
    for col in COSTS:
        table[f"{col}_vs_ref"] = np.nan
    if ref is not None:
        for _, block in table.groupby(["dataset", "partition"]):
            base = block[block["run"] == ref]
            if base.empty:
                continue
            for col in COSTS:
                denom = float(base[col].iloc[0])
                ratio = block[col] / denom if denom else np.nan
                table.loc[block.index, f"{col}_vs_ref"] = ratio
    if arch_groups:
        table = add_random_distribution(table, arch_groups)
    table.attrs["reference"] = ref
    where = runs.get("measured_on", [])
    table.attrs["measured_on"] = sorted(set(where) - {""})
    return table


def measured_on(metrics: dict) -> str:
    """Where a run's numbers come from (its provenance in metrics.json): bitwise equality
    and the clocks hold only on one CPU kind, torch build and code version."""
    if "cpu" not in metrics:  # an external run, or one from before provenance was kept
        return ""
    isa = metrics.get("cpu_capability", "?")
    device = metrics.get("device_name", metrics["cpu"])
    code = re.sub(r"^([0-9a-f]{12})[0-9a-f]{28}", r"\1", metrics.get("code_version", "unrecorded"))
    return (
        f"{device} ({isa}), torch {metrics.get('torch_version', '?')}, "
        f"{metrics.get('threads', '?')} threads, code {code}"
    )


def unhealthy_searches(runs: pd.DataFrame) -> list[str]:
    """One line per run whose search did not search, for the job log."""
    bad = runs[runs["search_warnings"] != ""]
    return [f"{r.run_dir}: {r.search_warnings}" for r in bad.itertuples()]


def _default_reference(runs: pd.DataFrame) -> str | None:
    """The first run of a one-stage searching method (DFNAS's kind: the claim under test
    is its cost against the others), when the config names no ``reference``; asked of
    the registry, not of a method's name."""
    from dfnas.errors import ConfigError
    from dfnas.methods import METHODS

    def one_stage_search(method: str) -> bool:
        try:
            cls = METHODS.get(method)
        except ConfigError:  # a baseline rule's run: no registered method
            return False
        return cls.searches and len(cls.stages) == 1

    names = runs.loc[runs["method"].map(one_stage_search), "run"].unique()
    return sorted(names)[0] if len(names) else None


def _pm(mean: float, std: float, scale: float = 100.0) -> str:
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def pretty(table: pd.DataFrame) -> pd.DataFrame:
    """The human-facing table: accuracy in % with std over seeds, costs with ratios."""
    out = table[["dataset", "partition", "run", "seeds"]].copy()
    # a "!" marks a row some of whose seeds' searches ended near chance or with a uniform
    # alpha: its accuracy is that of an unsearched child (see the run's metrics.json)
    flagged = table["unhealthy_seeds"] > 0
    out["run"] = [f"{m} (!)" if f else m for m, f in zip(out["run"], flagged, strict=True)]
    if "random_best" in table:  # a group of random architectures: its best beside its mean
        out["run"] = [
            r if np.isnan(b) else f"{r[:-1]}, best {100 * b:.2f} %)"
            for r, b in zip(out["run"], table["random_best"], strict=True)
        ]
    out["accuracy %"] = [
        _pm(m, s) for m, s in zip(table["accuracy"], table["accuracy_std"], strict=True)
    ]
    out["personalized %"] = [
        _pm(m, s) for m, s in zip(table["personalized"], table["personalized_std"], strict=True)
    ]
    out["params"] = table["params"].map(lambda v: f"{v:,.0f}")
    out["MMACs"] = table["MMACs"].map(lambda v: f"{v:.3f}")
    if table["onnx_kB"].notna().any():  # measured on the exported ONNX, onnxruntime 1 thread
        out["ONNX kB"] = ["-" if np.isnan(v) else f"{v:.1f}" for v in table["onnx_kB"]]
        out["latency ms"] = [
            "-" if np.isnan(v) else f"{v:.3f}" + ("" if np.isnan(ok) else f" ({_met(ok)})")
            for v, ok in zip(table["latency_ms"], table["latency_budget_met"], strict=True)
        ]
    for col in COSTS:
        out[col] = [
            "n/a" if np.isnan(v) else f"{v:.4g}" + ("" if np.isnan(r) else f" ({r:.2f}x)")
            for v, r in zip(table[col], table[f"{col}_vs_ref"], strict=True)
        ]
    out["acc @ budget %"] = [
        _pm(m, s) if not np.isnan(m) else ("none within" if c else "n/a")
        for m, s, c in zip(
            table["acc_at_budget"], table["acc_at_budget_std"], table["curve_seeds"], strict=True
        )
    ]
    summary = table["method"] == RANDOM_METHOD
    for col in ("TFLOPs_to_target", "compute_h_to_target"):
        out[col] = [
            "-" if s else _reached(v, k, n)
            for v, k, n, s in zip(
                table[col], table["target_reached"], table["seeds"], summary, strict=True
            )
        ]
    for col in [c for c in table.columns if c.startswith("pct_vs_")]:
        name = "percentile in " + col.removeprefix("pct_vs_")
        out[name] = ["-" if np.isnan(v) else f"{v:.0f}" for v in table[col]]
    return out


def _met(share: float) -> str:
    return (
        "budget met"
        if share == 1
        else ("budget missed" if share == 0 else "budget met by some seeds")
    )


def _reached(value: float, reached: int, seeds: int) -> str:
    if not reached:
        return "not reached"
    return f"{value:.4g}" + ("" if reached == seeds else f" ({reached}/{seeds} seeds)")


def write_tables(table: pd.DataFrame, csv: Path, md: Path, tex: Path) -> None:
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    nice = pretty(table)
    ref = table.attrs.get("reference")
    note = (
        f"\n\nCosts in parentheses: ratio to `{ref}` on the same dataset and partition. "
        if ref
        else "\n\n"
    ) + (
        "compute_h is client CPU hours (GPU: device hours); comm_MB counts both directions. "
        "acc @ budget: accuracy at the last evaluated round within the total training "
        'TFLOPs of the cheapest method of the setting ("none within": no evaluated round '
        "within it; "
        + ", ".join(f"{b:.4g}" for b in table["budget_TFLOPs"].dropna().unique())
        + "). TFLOPs/compute_h to target: client compute spent when the run first reached "
        + ", ".join(f"{100 * t:.2f} %" for t in table["target_acc"].dropna().unique())
        + ". (!): a search of this row ended near chance or with a uniform alpha. "
        "ONNX kB / latency ms: the exported final network (export/export.json), its "
        "single-image latency measured in onnxruntime on one thread of this machine.\n"
    )
    if table.attrs.get("measured_on"):
        note += "\nMeasured on: " + "; ".join(table.attrs["measured_on"]) + ".\n"
    with atomic_path(md) as tmp:
        Path(tmp).write_text(nice.to_markdown(index=False) + note)
    with atomic_path(tex) as tmp:
        Path(tmp).write_text(nice.to_latex(index=False, escape=True))
