"""Random architectures as a distribution: a run with arch_seeds becomes one run per
architecture, and the table gets the group's mean, spread and best, and every row's
percentile among the group's architectures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfnas.config import check_config
from dfnas.errors import ConfigError
from dfnas.report.collect import comparison, pretty
from dfnas.report.random_archs import percentile


def _cfg(**run) -> dict:
    return {
        "experiment": "t",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "iid", "num_clients": 4}},
        "runs": {"rnd": {"method": "fedavg", "model": "shufflenetv2", **run}},
    }


def test_arch_seeds_expand_to_one_run_per_architecture():
    cfg = check_config(_cfg(model_args={"ops": "random"}, arch_seeds=[3, 0]))
    assert list(cfg["runs"]) == ["rnd-a3", "rnd-a0"]
    assert cfg["runs"]["rnd-a3"]["model_args"] == {"ops": "random", "arch_seed": 3}
    assert cfg["arch_groups"] == {"rnd": ["rnd-a3", "rnd-a0"]}


def test_generated_architecture_run_cannot_take_another_runs_name():
    cfg = _cfg(model_args={"ops": "random"}, arch_seeds=[0])
    cfg["runs"]["rnd-a0"] = {"method": "fedavg"}
    with pytest.raises(ConfigError, match=r"^runs\.rnd\.arch_seeds: the run it generates"):
        check_config(cfg)


def test_percentile_counts_ties_half():
    pop = np.array([0.1, 0.2, 0.3, 0.4])
    assert percentile(0.25, pop) == 50.0
    assert percentile(0.3, pop) == 62.5
    assert percentile(0.5, pop) == 100.0 and percentile(0.0, pop) == 0.0


def _runs() -> pd.DataFrame:
    rows = []
    accs = {"rnd-a0": (0.50, 0.52), "rnd-a1": (0.60, 0.62), "rnd-a2": (0.70, 0.72)}
    accs |= {"dfnas": (0.65, 0.67)}
    for run, per_seed in accs.items():
        for seed, acc in enumerate(per_seed):
            rows.append(
                dict(
                    dataset="d",
                    partition="p",
                    run=run,
                    seed=seed,
                    accuracy=acc,
                    method="dfnas" if run == "dfnas" else "fedavg",
                    run_dir=f"/x/{run}/{seed}",
                    personalized_accuracy_mean=acc,
                    personalized_accuracy_std=0.0,
                    params=10,
                    macs=1e6,
                    train_flops=1e12,
                    bytes_down=1,
                    bytes_up=1,
                    wall_seconds=1.0,
                    client_seconds=1.0,
                    peak_memory_bytes=1,
                    rounds=2,
                    comm_bytes=2,
                    client_memory_bytes=1,
                    compute_seconds=1.0,
                    device="cpu",
                    search_train_flops=0,
                    search_warnings="",
                )  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_table_has_the_distribution_and_every_rows_percentile():
    groups = {"rnd": ["rnd-a0", "rnd-a1", "rnd-a2"]}
    table = comparison(_runs(), arch_groups=groups).set_index("run")
    summary = table.loc["rnd (3 random)"]
    assert summary["accuracy"] == pytest.approx(0.61)
    assert summary["accuracy_std"] == pytest.approx(np.std([0.51, 0.61, 0.71]))
    assert summary["random_best"] == pytest.approx(0.71)
    assert table.loc["dfnas", "pct_vs_rnd"] == pytest.approx(100 * 2 / 3)
    assert table.loc["rnd-a2", "pct_vs_rnd"] == pytest.approx(100 * 2.5 / 3)
    nice = pretty(table.reset_index()).set_index("run")
    assert "rnd (3 random, best 71.00 %)" in nice.index
    assert nice.loc["dfnas", "percentile in rnd"] == "67"
