"""What a run's numbers depend on besides its config: the machine kind and the torch build.

torch picks its CPU kernels by instruction set (oneDNN by the widest ISA it may use,
ATen by ``cpu_capability``), and kernels differ in summation order, so results are
bitwise equal only between runs on the same CPU kind with the same build; every run
records both in ``metrics.json`` (docs/speed.md, "Reproducibility across machines")::

    machine_info(torch.device("cpu"))["cpu_capability"]   # 'AVX512' or 'AVX2'
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (AMD's Zen 3 and Zen 4 share
    the name 'AMD EPYC' on some hosts), or the platform's word for it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
        if not line.strip():
            break
    name = fields.get("model name", platform.machine())
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


@cache
def code_version() -> str:
    """The git commit of the checkout the package runs from, with ``-dirty`` when its
    tracked files differ from it; the package version when it is not a checkout."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True)
        if out.returncode:
            raise OSError(out.stderr.strip())
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    except OSError:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"dfnas {version('dfnas')}"
        except PackageNotFoundError:
            return "unknown"


def machine_info(device: torch.device) -> dict[str, str]:
    info = {
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "torch_git": torch.version.git_version,
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        # set to force oneDNN's kernels of a narrower ISA (tests/test_layout.py does)
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda_version"] = str(torch.version.cuda)
    return info
