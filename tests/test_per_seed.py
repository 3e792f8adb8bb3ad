"""The per-seed table the verdict pages include instead of retyping numbers."""

from __future__ import annotations

import pandas as pd

from dfnas.report.per_seed import per_seed, per_seed_markdown


def test_a_random_group_is_one_row_with_its_mean_and_macs_range():
    runs = pd.DataFrame(
        [
            ("d", "p", "dfnas", 0, 0.40, 500_000),
            ("d", "p", "dfnas", 1, 0.42, 510_000),
            ("d", "p", "rand-a0", 0, 0.30, 520_000),
            ("d", "p", "rand-a1", 0, 0.50, 540_000),
            ("d", "p", "rand-a0", 1, 0.20, 520_000),
        ],
        columns=["dataset", "partition", "run", "seed", "accuracy", "macs"],
    )
    table = per_seed(runs, {"rand": ["rand-a0", "rand-a1"]}).set_index(["row", "seed"])
    assert table.loc[("rand", 0), "accuracy"] == 0.40
    assert table.loc[("rand", 0), "networks"] == 2
    assert table.loc[("rand", 1), "networks"] == 1  # seed 1 lacks a1: not hidden
    md = per_seed_markdown(table.reset_index())
    row = next(line for line in md.splitlines() if line.startswith("| dfnas "))
    assert [c.strip() for c in row.split("|")[2:4]] == ["40.00 %, 0.500 M", "42.00 %, 0.510 M"]
    assert "40.00 % (mean of 2), 0.520-0.540 M" in md
    assert "20.00 % (mean of 1), 0.520-0.520 M" in md
