"""The verdict table: each of the paper's claims read from paired per-seed numbers, with
verdicts that follow the intervals and ratios, never the run's names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfnas.config import check_config
from dfnas.errors import ConfigError
from dfnas.report.verdict import verdict_table, write_verdict
from dfnas.report.verdict_figure import verdict_figure
from dfnas.report.verdict_rows import (
    FAILS,
    HOLDS,
    UNCLEAR,
    VerdictSpec,
    paired,
    ratio_verdict,
)


def _row(run, seed, acc, method, flops=1.0, stages=1, budget=None, macs=5e5, limit=np.nan):
    return dict(
        macs=macs,
        budget_macs=limit,
        dataset="d",
        partition="p",
        run=run,
        seed=seed,
        method=method,
        accuracy=acc,
        train_flops=flops,
        compute_seconds=flops,
        client_memory_bytes=flops,
        comm_bytes=flops,
        stages_count=stages,
        within_budget=budget,
        search_warnings="",
    )


def _runs(dfnas_acc, fednas_acc, fednas_cost=20.0) -> pd.DataFrame:
    rows = []
    for s, (a, b) in enumerate(zip(dfnas_acc, fednas_acc, strict=True)):
        rows.append(_row("dfnas", s, a, "dfnas"))
        rows.append(_row("fednas", s, b, "fednas", flops=fednas_cost, stages=2))
        rows.append(_row("fixed", s, a - 0.01, "fedavg"))
        for k, offset in enumerate((-0.05, 0.0, 0.05)):
            rows.append(_row(f"rnd-a{k}", s, a + offset, "fedavg"))
    return pd.DataFrame(rows)


SPEC = VerdictSpec("dfnas", "fednas", fixed="fixed", random=["rnd-a0", "rnd-a1", "rnd-a2"])


def _verdicts(runs, spec=SPEC) -> dict[str, str]:
    (table,) = verdict_table(runs, spec)
    return dict(zip(table["claim"], table["verdict"], strict=True))


def test_paired_interval_is_students_t():
    d, mean, lo, hi = paired(pd.Series([0.5, 0.6, 0.7]), pd.Series([0.4, 0.4, 0.4]))
    assert np.allclose(d, [0.1, 0.2, 0.3]) and mean == pytest.approx(0.2)
    half = 4.302652729911275 * 0.1 / np.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert (lo, hi) == pytest.approx((0.2 - half, 0.2 + half))


def test_accuracy_claim_follows_the_interval():
    better = _verdicts(_runs([0.60, 0.62, 0.61], [0.50, 0.51, 0.52]))
    assert better["accuracy at least fednas's"] == HOLDS
    worse = _verdicts(_runs([0.50, 0.51, 0.52], [0.60, 0.62, 0.61]))
    assert worse["accuracy at least fednas's"] == FAILS
    mixed = _verdicts(_runs([0.60, 0.50, 0.55], [0.55, 0.55, 0.55]))
    assert mixed["accuracy at least fednas's"] == UNCLEAR


def test_two_seeds_never_give_a_verdict_on_accuracy():
    v = _verdicts(_runs([0.60, 0.61], [0.50, 0.50]))
    assert v["accuracy at least fednas's"] == UNCLEAR


def test_cost_claims_need_the_factor_on_every_seed():
    assert ratio_verdict(np.array([12.0, 11.0, 10.0]), 10) == HOLDS
    assert ratio_verdict(np.array([12.0, 9.0]), 10) == UNCLEAR
    assert ratio_verdict(np.array([3.0, 4.0]), 10) == FAILS
    cheap = _verdicts(_runs([0.6] * 3, [0.5] * 3, fednas_cost=20.0))
    assert cheap["communication: 10x less than fednas"] == HOLDS
    close = _verdicts(_runs([0.6] * 3, [0.5] * 3, fednas_cost=5.0))
    assert close["client compute (training FLOPs): 10x less than fednas"] == FAILS


def test_controls_of_the_space_and_structure_rows():
    v = _verdicts(_runs([0.60, 0.62, 0.64], [0.5, 0.5, 0.5]))
    assert v["searched child beats its space's fixed network (fixed)"] == HOLDS  # +1 pp each
    # dfnas sits exactly at the random mean on every seed: no verdict either way
    assert v["searched child beats the mean of 3 random networks of its space"] == UNCLEAR
    assert v["no retraining: one stage, the child keeps the search's weights"] == HOLDS
    assert v["device budget honoured"] == "not tested here"


def test_a_flagged_search_fails_the_precondition():
    runs = _runs([0.6] * 3, [0.5] * 3)
    runs.loc[(runs["run"] == "fednas") & (runs["seed"] == 1), "search_warnings"] = "alpha uniform"
    v = _verdicts(runs)
    assert v["precondition: every search left chance and moved its alpha"] == FAILS


def test_device_budget_row_reads_every_budgeted_run_of_the_method():
    runs = _runs([0.6] * 3, [0.5] * 3)
    budgeted = [_row("dfnas-phone", s, 0.6, "dfnas", budget=s != 1) for s in range(3)]
    runs = pd.concat([runs, pd.DataFrame(budgeted)], ignore_index=True)
    assert _verdicts(runs)["device budget honoured"] == FAILS


def _budgeted(unconstrained_macs=6e5, random_macs=5e5) -> pd.DataFrame:
    """The cross-device shape: a budgeted claimant, its unconstrained twin, controls."""
    rows = []
    for s, gap in enumerate((-0.010, -0.020, -0.015)):
        rows.append(_row("dfnas-small", s, 0.45, "dfnas", budget=True, macs=5.2e5, limit=5.5e5))
        rows.append(_row("dfnas", s, 0.45 - gap, "dfnas", macs=unconstrained_macs))
        rows.append(_row("fednas", s, 0.50, "fednas", flops=20.0, stages=2, macs=9e5))
        rows.append(_row("fixed", s, 0.46, "fedavg", macs=5.28e5))
        for k in range(3):
            rows.append(_row(f"rnd-a{k}", s, 0.44, "fedavg", macs=random_macs + k))
    return pd.DataFrame(rows)


BUDGETED = VerdictSpec(
    "dfnas-small", "fednas", "fixed", ["rnd-a0", "rnd-a1", "rnd-a2"], unconstrained="dfnas"
)


def test_budget_rows_check_the_budget_binds_and_the_controls_fit():
    v = _verdicts(_budgeted(), BUDGETED)
    assert v["device budget honoured"] == HOLDS
    assert v["the fixed and random networks compared meet the same budget"] == HOLDS
    assert v["the budget binds: dfnas's child is over it"] == HOLDS
    # the budgeted child is 1-2 points under its unconstrained twin on every seed
    assert v["the budget costs no accuracy: the child at least dfnas's"] == FAILS
    assert v["fednas's network beside the budget (it has no budget mechanism)"] == (
        "no budget to honour"
    )
    (table,) = verdict_table(_budgeted(), BUDGETED)
    fednas = table.set_index("claim").loc[
        "fednas's network beside the budget (it has no budget mechanism)"
    ]
    assert fednas["claimant"] == "fednas: 0.900 M MACs, over the budget on 3 of 3 seeds"


def test_budget_rows_say_when_the_comparison_is_not_inside_the_budget():
    v = _verdicts(_budgeted(unconstrained_macs=5e5, random_macs=5.6e5), BUDGETED)
    assert v["the fixed and random networks compared meet the same budget"] == FAILS
    assert v["the budget binds: dfnas's child is over it"] == FAILS
    # a budget that binds on some seeds only says on how many
    mixed = _budgeted()
    mixed.loc[(mixed["run"] == "dfnas") & (mixed["seed"] == 1), "macs"] = 5e5
    v = _verdicts(mixed, BUDGETED)
    assert v["the budget binds: dfnas's child is over it"] == "holds on 2 of 3 seeds"
    # without a budget the rows are one: it says so
    plain = _verdicts(_runs([0.6] * 3, [0.5] * 3))
    assert not any(claim.startswith("the budget") for claim in plain)


def test_outputs_are_written(tmp_path):
    tables = verdict_table(_runs([0.6, 0.61, 0.62], [0.5, 0.52, 0.51]), SPEC)
    write_verdict(tables, tmp_path / "v.csv", tmp_path / "v.md")
    verdict_figure(tables, tmp_path / "v")
    md = (tmp_path / "v.md").read_text()
    assert "### d / p (3 seeds)" in md and HOLDS in md
    assert len(pd.read_csv(tmp_path / "v.csv")) == len(tables[0])
    assert (tmp_path / "v.png").stat().st_size > 0 and (tmp_path / "v.pdf").exists()


def _cfg(verdict: dict) -> dict:
    return {
        "experiment": "t",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "iid", "num_clients": 4}},
        "runs": {
            "dfnas": {"method": "dfnas"},
            "fednas": {"method": "fednas"},
            "rnd": {
                "method": "fedavg",
                "model": "shufflenetv2",
                "model_args": {"ops": "random"},
                "arch_seeds": [0, 1],
            },
            "fixed": {"method": "fedavg", "model": "shufflenetv2"},
        },
        "verdict": verdict,
    }


def test_config_verdict_names_must_exist():
    ok = check_config(_cfg({"claimant": "dfnas", "baseline": "fednas", "random": "rnd"}))
    assert ok["verdict"]["cost_factor"] == 10
    with pytest.raises(ConfigError, match=r"^verdict\.baseline: 'fedns' names no run"):
        check_config(_cfg({"claimant": "dfnas", "baseline": "fedns"}))
    with pytest.raises(ConfigError, match=r"^verdict\.random: 'fixed' has no arch_seeds"):
        check_config(_cfg({"claimant": "dfnas", "baseline": "fednas", "random": "fixed"}))


def test_seeds_to_decide_is_the_smallest_seed_count_with_the_power():
    """The planning figure under a row that cannot tell: at the returned count a paired
    t-test at the observed effect excludes zero in 80 % of simulated experiments, one
    seed fewer it does not (Monte Carlo, independent of the noncentral t)."""
    from scipy import stats

    from dfnas.report.verdict_rows import seeds_to_decide

    d = np.array([-1.12, -3.02, -5.61])  # the three-seed verdict's DFNAS - FedNAS
    n = seeds_to_decide(d)
    rng = np.random.default_rng(0)
    effect = d.mean() / d.std(ddof=1)

    def simulated_power(k: int) -> float:
        x = rng.normal(effect, 1.0, size=(40_000, k))
        t = x.mean(1) / (x.std(1, ddof=1) / np.sqrt(k))
        return float((np.abs(t) > stats.t.ppf(0.975, k - 1)).mean())

    assert n == 6
    assert simulated_power(n) >= 0.79 and simulated_power(n - 1) < 0.8
    assert seeds_to_decide(np.array([0.46, 0.66, -1.85])) is None  # no effect to speak of
    assert seeds_to_decide(np.array([1.0])) is None


def test_a_row_that_cannot_tell_says_how_many_seeds_would():
    (table,) = verdict_table(_runs([0.60, 0.56, 0.62], [0.55, 0.55, 0.55]), SPEC)
    row = table.set_index("claim").loc["accuracy at least fednas's"]
    assert row["verdict"] == UNCLEAR and row["seeds to decide"].startswith("about ")
    decided = table.set_index("claim").loc[
        "no retraining: one stage, the child keeps the search's weights"
    ]
    assert decided["seeds to decide"] == "-"
