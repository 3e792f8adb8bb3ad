"""The matched-compute columns, computed by hand on a two-method fixture: a cheap method
and a two-stage method whose search rounds come first on its compute axis."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dfnas.report.collect import comparison, load_runs, pretty
from dfnas.report.curves import accuracy_at, compute_curve, compute_to_reach
from dfnas.results import REQUIRED_METRICS

TF = 1e12


def _run(root, method, seed, rounds, search=None, accuracy=None):
    """A run folder: ``rounds`` are (train_flops, cpu_seconds, accuracy) per round."""
    d = root / "runs" / "data" / "part" / method / f"seed{seed}"
    for sub, rows in (("search", search), ("", rounds)):
        if rows is None:
            continue
        (d / sub).mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "round": range(len(rows)),
                "train_flops": [r[0] for r in rows],
                "client_seconds": [2 * r[1] for r in rows],  # wall: not what CPU runs count
                "client_cpu_seconds": [r[1] for r in rows],
                "test_accuracy": [r[2] for r in rows],
            }
        ).to_csv(d / sub / "history.csv", index=False)
    metrics = (
        {k: 0 for k in REQUIRED_METRICS}
        | {
            "method": method,
            "accuracy": accuracy if accuracy is not None else rounds[-1][2],
            "train_flops": sum(r[0] for r in (search or []) + rounds),
            "device": "cpu",
        }
        | ({"prior_stages": ["search"]} if search else {})
    )
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d / "metrics.json"


@pytest.fixture
def fixture_runs(tmp_path):
    paths = [
        # cheap: 1 TFLOP per round
        _run(tmp_path, "cheap", 0, [(TF, 10, 0.50), (TF, 10, 0.60), (TF, 10, 0.70)]),
        _run(tmp_path, "cheap", 1, [(TF, 10, 0.40), (TF, 10, 0.60), (TF, 10, 0.72)]),
        # two-stage: 2 search rounds of 1 TFLOP (not evaluated, then 0.10), then train rounds
        _run(
            tmp_path,
            "nas",
            0,
            [(0.5 * TF, 5, 0.55), (0.5 * TF, 5, 0.80), (0.5 * TF, 5, 0.90)],
            search=[(TF, 100, float("nan")), (TF, 100, 0.10)],
        ),
    ]
    return load_runs(paths)


def test_curve_puts_search_first_and_counts_cpu_seconds(fixture_runs):
    nas = fixture_runs[fixture_runs["run"] == "nas"].iloc[0]
    curve = compute_curve(nas.run_dir)
    # the unevaluated first search round is dropped, but its compute is counted
    assert curve["flops"].tolist() == [2 * TF, 2.5 * TF, 3 * TF, 3.5 * TF]
    assert curve["seconds"].tolist() == [200, 205, 210, 215]
    assert curve["accuracy"].tolist() == [0.10, 0.55, 0.80, 0.90]
    assert accuracy_at(curve, 2.9 * TF) == 0.55
    assert accuracy_at(curve, 1.9 * TF) != accuracy_at(curve, 1.9 * TF)  # NaN: nothing within
    assert compute_to_reach(curve, 0.8) == (3 * TF, 210)
    assert compute_to_reach(curve, 0.95) != compute_to_reach(curve, 0.95)  # (NaN, NaN)


def test_table_columns_by_hand(fixture_runs):
    table = comparison(fixture_runs).set_index("run")
    # budget: the cheapest method's mean total = cheap's 3 TFLOPs (nas: 3.5)
    assert table.loc["cheap", "budget_TFLOPs"] == pytest.approx(3.0)
    # cheap at 3 TFLOPs: its last rounds, (0.70 + 0.72) / 2; nas at 3 TFLOPs: 0.80
    assert table.loc["cheap", "acc_at_budget"] == pytest.approx(0.71)
    assert table.loc["nas", "acc_at_budget"] == pytest.approx(0.80)
    # target: 0.9 x best mean final accuracy (nas 0.90) = 0.81
    assert table.loc["cheap", "target_acc"] == pytest.approx(0.81)
    assert table.loc["cheap", "target_reached"] == 0
    assert table.loc["nas", "target_reached"] == 1
    assert table.loc["nas", "TFLOPs_to_target"] == pytest.approx(3.5)
    assert table.loc["nas", "compute_h_to_target"] == pytest.approx(215 / 3600)

    nice = pretty(table.reset_index()).set_index("run")
    assert nice.loc["cheap", "TFLOPs_to_target"] == "not reached"
    assert nice.loc["cheap", "acc @ budget %"] == "71.00 ± 1.00"


def test_absolute_target_and_partial_reach(fixture_runs):
    table = comparison(fixture_runs, target_accuracy=0.7).set_index("run")
    # seed 0 reached 0.70 after 3 TFLOPs, seed 1 reached 0.72 after 3 TFLOPs
    assert table.loc["cheap", "target_reached"] == 2
    assert table.loc["cheap", "TFLOPs_to_target"] == pytest.approx(3.0)
    table = comparison(fixture_runs, target_accuracy=0.6).set_index("run")
    assert table.loc["cheap", "TFLOPs_to_target"] == pytest.approx(2.0)
    assert table.loc["nas", "TFLOPs_to_target"] == pytest.approx(3.0)


def test_run_without_history_gets_no_matched_columns(fixture_runs, tmp_path):
    d = tmp_path / "runs" / "data" / "part" / "external" / "seed0"
    d.mkdir(parents=True)
    metrics = {k: 0 for k in REQUIRED_METRICS} | {"method": "external", "accuracy": 0.3}
    (d / "metrics.json").write_text(json.dumps(metrics))
    runs = pd.concat([fixture_runs, load_runs([d / "metrics.json"])], ignore_index=True)
    table = comparison(runs).set_index("run")
    assert table.loc["cheap", "budget_TFLOPs"] == pytest.approx(3.0)  # external ignored
    assert pd.isna(table.loc["external", "acc_at_budget"])
    assert pretty(table.reset_index()).set_index("run").loc["external", "acc @ budget %"] == "n/a"
