"""Figures are results too: the same runs draw the same figure, byte for byte."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dfnas.report.figures import personalized_distribution


def test_personalized_figure_is_the_same_every_time(tmp_path):
    """seaborn's stripplot jitters with numpy's unseeded global generator; the figure
    seeds it, and leaves the caller's generator where it was."""
    rows = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        acc = np.linspace(0.3, 0.6, 12)
        pd.DataFrame({"client": range(12), "accuracy_personalized": acc}).to_csv(
            folder / "personalized.csv", index=False
        )
        rows.append({"run": run, "run_dir": str(folder), "dataset": "d", "partition": "p"})
    runs = pd.DataFrame(rows)
    np.random.seed(7)
    expected_next = np.random.random()
    np.random.seed(7)
    drawn = []
    for k in range(2):
        personalized_distribution(runs, tmp_path / f"fig{k}")
        drawn.append((tmp_path / f"fig{k}.png").read_bytes())
    assert drawn[0] == drawn[1]
    assert np.random.random() == expected_next
