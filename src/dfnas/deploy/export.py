"""A run's final network as a portable artifact, checked by a runtime that is not this
package: DFNAS's claim is a child "ready to deploy", and that is only shown once the child
runs somewhere else and gives the same answers.

``export_run`` rebuilds the network from ``model.pt`` + ``model.json``, wraps it with the
dataset's normalization (the artifact takes float pixels in [0, 1], N x C x H x W, so a
device needs nothing from this package), writes ONNX through torch's exporter, then loads
the file with onnxruntime and compares its predictions with the PyTorch model's on the
whole test split: top-1 must agree on at least ``MIN_AGREEMENT`` of the samples and the
logits must lie within ``LOGIT_TOLERANCE``. It also times single-sample inference (warm,
median of many) in onnxruntime on one thread, the figure a device budget is read against::

    report = export_run("results/x/runs/d/p/dfnas/seed0", "results/datasets/d-.../data.npz",
                        "results/x/runs/d/p/dfnas/seed0/export")
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dfnas.errors import DfnasError
from dfnas.io import atomic_path, read_json

OPSET = 18  # recent enough for every op of the registered models (tested)
MIN_AGREEMENT = 0.999  # share of test samples whose top-1 must agree
LOGIT_TOLERANCE = 1e-3  # largest absolute logit difference allowed (float32 vs float32)
LATENCY_REPEATS, LATENCY_WARMUP = 200, 20


class Normalized(nn.Module):
    """The network behind its input normalization: float pixels in [0, 1] in, logits out."""

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - self.mean) / self.std)


def load_run_model(run_dir: str | Path) -> tuple[nn.Module, dict]:
    """The run's final network in eval mode, and its ``model.json`` spec."""
    from dfnas.models import build_from_spec
    from dfnas.search import darts_supernet  # noqa: F401  (search networks by name, too)

    run_dir = Path(run_dir)
    spec = read_json(run_dir / "model.json")
    net = build_from_spec(spec)
    net.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu"))
    return net.eval(), spec


def export_onnx(model: nn.Module, in_shape: tuple[int, ...], path: Path) -> None:
    """ONNX with a dynamic batch dimension, written atomically."""
    example = torch.rand(2, *in_shape)
    batch = torch.export.Dim("batch", min=1)
    # the exporter logs every torchvision op it cannot register (torchvision is not
    # installed beside this torch) and a deprecation inside torch: noise in a job's log
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            dynamic_shapes=({0: batch},),
            input_names=["pixels"],
            output_names=["logits"],
            verbose=False,
        )
    with atomic_path(path) as tmp:
        program.save(str(tmp))


def _session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare(path: Path, model: nn.Module, pixels: np.ndarray, batch: int = 500) -> dict[str, float]:
    """onnxruntime's predictions against the PyTorch model's on ``pixels`` (float, [0, 1])."""
    session = _session(path, threads=torch.get_num_threads())
    agree, worst = 0, 0.0
    for i in range(0, len(pixels), batch):
        x = pixels[i : i + batch]
        (ours,) = session.run(None, {"pixels": x})
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        agree += int((ours.argmax(1) == ref.argmax(1)).sum())
        worst = max(worst, float(np.abs(ours - ref).max()))
    return {"top1_agreement": agree / len(pixels), "max_logit_diff": worst}


def latency_ms(path: Path, in_shape: tuple[int, ...]) -> dict[str, float]:
    """Single-sample inference in onnxruntime, one thread, warm: median and spread (ms)."""
    session = _session(path, threads=1)
    x = np.random.default_rng(0).random((1, *in_shape), dtype=np.float32)
    for _ in range(LATENCY_WARMUP):
        session.run(None, {"pixels": x})
    times = []
    for _ in range(LATENCY_REPEATS):
        t0 = time.perf_counter()
        session.run(None, {"pixels": x})
        times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=20)
    return {"latency_ms": statistics.median(times), "latency_p5_ms": q[0], "latency_p95_ms": q[-1]}


def latency_budget(metrics: dict) -> float | None:
    """The latency budget (ms) a run searched for, if it had one."""
    budget = metrics.get("budgets", {}).get("latency_ms")
    return float(budget["limit"]) if budget else None


def export_run(run_dir: str | Path, data_path: str | Path, out_dir: str | Path) -> dict:
    """Export, check and time one run's final network; returns what ``export.json`` holds.

    Raises ``DfnasError`` naming the run when the runtime disagrees with PyTorch, so a
    table never shows an artifact that does not compute what the run measured."""
    from dfnas.data import load_cached

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    net, spec = load_run_model(run_dir)
    ds = load_cached(data_path)
    model = Normalized(net, ds.mean, ds.std).eval()
    in_shape = tuple(spec["in_shape"])
    path = out_dir / "model.onnx"
    export_onnx(model, in_shape, path)
    pixels = ds.x_test.astype(np.float32) / 255.0
    check = compare(path, model, pixels)
    if check["top1_agreement"] < MIN_AGREEMENT or check["max_logit_diff"] > LOGIT_TOLERANCE:
        raise DfnasError(
            f"{path}: onnxruntime disagrees with the trained model on the test split "
            f"(top-1 agreement {check['top1_agreement']:.4%}, largest logit difference "
            f"{check['max_logit_diff']:.2e}; required >= {MIN_AGREEMENT:.1%} and <= "
            f"{LOGIT_TOLERANCE:g})"
        )
    metrics = read_json(run_dir / "metrics.json")
    timing = latency_ms(path, in_shape)
    budget = latency_budget(metrics)
    import onnxruntime

    return {
        "format": "onnx",
        "opset": OPSET,
        "file": path.name,
        "bytes": path.stat().st_size,
        "input": {
            "name": "pixels",
            "shape": ["batch", *in_shape],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "normalization": {"mean": list(ds.mean), "std": list(ds.std), "inside": True},
        },
        "output": {"name": "logits", "classes": list(ds.classes)},
        "model": spec,
        "test_samples": len(pixels),
        **check,
        "tolerance": {"min_top1_agreement": MIN_AGREEMENT, "max_logit_diff": LOGIT_TOLERANCE},
        **timing,
        "latency_runtime": f"onnxruntime {onnxruntime.__version__}, CPU, 1 thread, batch 1",
        "latency_budget_ms": budget,
        "meets_latency_budget": None if budget is None else timing["latency_ms"] <= budget,
    }
