"""The exported child: ONNX that onnxruntime (not this package) runs to the same answers
as the trained network, with its size, input contract and measured latency recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import tiny_dataset

from dfnas.deploy import export as exp
from dfnas.errors import DfnasError
from dfnas.models import build_model, model_spec

pytest.importorskip("onnxruntime")


def _run_dir(tmp_path, name, budgets=None, **model_args):
    ds = tiny_dataset(channels=3)
    torch.manual_seed(0)
    net = build_model(name, ds.in_shape, ds.num_classes, **model_args)
    with torch.no_grad():  # BN statistics that are not the identity, as after training
        net.train()(torch.randn(16, *ds.in_shape) * 2 + 1)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(net.state_dict(), run / "model.pt")
    spec = model_spec(name, ds.in_shape, ds.num_classes, **model_args)
    (run / "model.json").write_text(json.dumps(spec))
    (run / "metrics.json").write_text(json.dumps({"budgets": budgets or {}}))
    ds.save(tmp_path / "data.npz")
    return run, tmp_path / "data.npz", ds


@pytest.mark.parametrize(
    "name, args",
    [
        (
            "shufflenetv2",
            {
                "ops": ["xception", "shuffle7x7", "shuffle5x5", "shuffle3x3"],
                "stem": 8,
                "stages": [[2, 16], [2, 32]],
                "last": 32,
            },
        ),
        ("darts", {"C": 4, "layers": 3, "drop_path": 0.0}),
    ],
    ids=["dfnas child", "fednas child"],
)
def test_export_matches_the_trained_network_in_onnxruntime(tmp_path, name, args):
    run, data, ds = _run_dir(tmp_path, name, **args)
    report = exp.export_run(run, data, tmp_path / "export")
    assert (tmp_path / "export" / "model.onnx").stat().st_size == report["bytes"] > 0
    assert report["top1_agreement"] >= exp.MIN_AGREEMENT
    assert report["max_logit_diff"] <= exp.LOGIT_TOLERANCE
    assert report["test_samples"] == len(ds.y_test)
    assert report["input"]["shape"] == ["batch", *ds.in_shape]
    assert report["input"]["normalization"]["mean"] == pytest.approx(list(ds.mean))
    assert 0 < report["latency_p5_ms"] <= report["latency_ms"] <= report["latency_p95_ms"]
    assert report["meets_latency_budget"] is None
    # the artifact alone, fed raw [0, 1] pixels, gives the network's logits on normalized ones
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "export" / "model.onnx"))
    pixels = ds.x_test[:5].astype(np.float32) / 255
    (logits,) = sess.run(None, {"pixels": pixels})
    net, _ = exp.load_run_model(run)
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1)
    std = torch.tensor(ds.std).view(1, -1, 1, 1)
    with torch.no_grad():
        ref = net((torch.from_numpy(pixels) - mean) / std).numpy()
    assert np.abs(logits - ref).max() < 1e-4


def test_latency_budget_is_judged_on_the_measured_latency(tmp_path):
    args = {"stem": 8, "stages": [[2, 16]], "last": 16, "ops": ["shuffle3x3", "shuffle3x3"]}
    run, data, _ = _run_dir(
        tmp_path, "shufflenetv2", budgets={"latency_ms": {"child": 0.1, "limit": 1e-6}}, **args
    )
    report = exp.export_run(run, data, tmp_path / "export")
    assert report["latency_budget_ms"] == 1e-6 and report["meets_latency_budget"] is False


def test_a_disagreeing_runtime_fails_in_one_line(tmp_path, monkeypatch):
    run, data, _ = _run_dir(tmp_path, "cnn")
    monkeypatch.setattr(
        exp, "compare", lambda *a, **k: {"top1_agreement": 0.9, "max_logit_diff": 0.5}
    )
    with pytest.raises(DfnasError, match=r"model\.onnx: onnxruntime disagrees .* 90\.0000%"):
        exp.export_run(run, data, tmp_path / "export")
