"""Right gradients on every path: every registered network, both search networks, at
digits and CIFAR shapes, 1 and 2 threads, in both memory layouts, against a float64
NCHW reference of the same weights and batch (tests/gradient_case.py, one subprocess per
network and shape so a heap-corrupting kernel fails its case instead of pytest).

On an AVX-512 CPU the fp32 cases also run with ONEDNN_MAX_CPU_ISA=AVX2, which makes
oneDNN take the AVX2 kernels that the project's other machines run: the strided 1x1
conv fault (heap corruption, wrong weight gradients) lives only there.

Tolerances. fp32: channels_last within 4x NCHW fp32's own error + 1e-5 (the same
network and batch in NCHW, median of three seeds; before the fixes channels_last was
100-1000x off on the DARTS networks and ShuffleNetV2), and NCHW's error over all
parameters at once below 1e-2 (measured: 4e-7 to 4e-3). bf16: in the layout the loop
picks for bf16, the error over all parameters at once below 1 for every seed, i.e. the
gradient still points the right way. bf16 keeps 8 bits, and these networks measure
0.04 (CNN) to 0.42 (MobileNetV2) against float64 in NCHW, so the bound only catches a
broken kernel (bf16 channels_last gave 1e31 on the DARTS search net), not imprecision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dfnas.models import MODELS
from dfnas.search import darts_supernet  # noqa: F401  (registers darts_search)

HERE = Path(__file__).resolve().parent
SHAPES = {"digits": "1,8,8", "cifar": "3,32,32"}

# every registered model at its defaults, except where a default is too slow for a test
# or random per call (drop path); the search networks at the sizes the configs and tests
# run (DARTS's at C 4, the shipped configs' search, and C 2, the tests')
OVERRIDES = {"darts": {"C": 8, "layers": 3, "drop_path": 0.0}}
EXTRA = [
    ("darts_search", {"C": 2, "layers": 3}),
    ("darts_search", {"C": 4, "layers": 3}),
    ("darts_search", {"C": 2, "layers": 3, "merge_edges": True}),
    ("shufflenetv2", {"ops": "random", "arch_seed": 0}),
    ("supernet", {"stem": 8, "stages": [[1, 16], [2, 32]], "last": 64}),
]
NETWORKS = [(n, OVERRIDES.get(n, {})) for n in MODELS.names() if n != "darts_search"] + EXTRA


def _has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


ISAS = ["native"] + (["AVX2"] if _has_avx512() else [])


def _id(net: tuple[str, dict]) -> str:
    return net[0] + "".join(
        f"-{k}{v}" for k, v in net[1].items() if k in ("C", "ops", "merge_edges")
    )


def _emulated(net: tuple[str, dict]) -> bool:
    """Whether a network also runs on emulated AVX2: all but the C 4 DARTS search net,
    whose AVX2 cases cost 30 s of CI; C 2 takes the same kernels at the small channel
    counts where the strided 1x1 fault lived, and C 4 runs natively."""
    return not (net[0] == "darts_search" and net[1].get("C") == 4)


CASES = [
    pytest.param(net, shape, isa, id=f"{_id(net)}-{shape}-{isa}")
    for net in NETWORKS
    for shape in SHAPES
    for isa in ISAS
    if isa == "native" or _emulated(net)
]


def run_case(name: str, args: dict, shape: str, runs: list[str], isa: str) -> list[dict]:
    env = dict(os.environ)
    if isa != "native":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    cmd = [sys.executable, str(HERE / "gradient_case.py"), name, json.dumps(args), shape, *runs]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{name} {args} at {shape} ({isa}) exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
@pytest.mark.parametrize("net,shape,isa", CASES)
def test_gradients_match_float64_in_every_layout(net, shape, isa):
    name, args = net
    runs = ["1:fp32", "2:fp32"] + (["2:bf16"] if isa == "native" else [])
    for row in run_case(name, args, SHAPES[shape], runs, isa):
        where = f"{name} {args} {shape} {isa} {row['threads']} threads {row['precision']}"
        if row["precision"] == "fp32":
            bound = 4 * row["nchw_error"] + 1e-5
            assert row["channels_last_error"] <= bound, (
                f"{where}: channels_last error {row['channels_last_error']:.2e} "
                f"(worst {row['channels_last_worst_tensor']}) > {bound:.2e}"
            )
            assert row["nchw_global_error"] < 1e-2, f"{where}: {row}"
        else:
            picked = row["auto"]
            err = row[f"{picked}_global_error_max"]
            assert err < 1.0, f"{where}: {picked} bf16 global error {err:.2e}"


def test_bf16_runs_in_nchw_and_refuses_forced_channels_last():
    from dfnas.errors import ConfigError
    from dfnas.federated.config import TrainConfig
    from dfnas.federated.loop import use_channels_last
    from dfnas.models import build_model

    net = build_model("darts_search", (3, 8, 8), 10, C=2, layers=3)
    cpu = torch.device("cpu")
    assert use_channels_last("auto", net, cpu, "fp32")
    assert not use_channels_last("auto", net, cpu, "bf16")
    with pytest.raises(ConfigError, match=r"^training\.channels_last: true is refused"):
        TrainConfig(channels_last=True, precision="bf16").check()
