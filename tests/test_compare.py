"""Comparing one run's two result folders (``report.compare``): equal folders compare
equal, and a changed tensor is named, so a reader knows where a rerun parted."""

from __future__ import annotations

import json

import pandas as pd
import torch

from dfnas.report.compare import compare_run


def _run(folder, state: dict[str, torch.Tensor]):
    folder.mkdir()
    torch.save(state, folder / "model.pt")
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "wall_seconds": 1.0}))
    (folder / "model.json").write_text(json.dumps({"model": "cnn"}))
    pd.DataFrame({"round": [0], "train_loss": [1.0]}).to_csv(folder / "history.csv", index=False)
    return folder


def test_equal_runs_compare_equal_and_a_changed_tensor_is_named(tmp_path):
    state = {"conv.weight": torch.ones(2, 2), "fc.bias": torch.zeros(3)}
    a = _run(tmp_path / "a", state)
    assert compare_run(a, _run(tmp_path / "b", {k: v.clone() for k, v in state.items()})) == []
    changed = {"conv.weight": torch.ones(2, 2), "fc.bias": torch.tensor([0.0, 1e-7, 0.0])}
    diffs = compare_run(a, _run(tmp_path / "c", changed))
    assert diffs == ["model.pt: tensors differ (2 vs 2 tensors, first fc.bias)"]
