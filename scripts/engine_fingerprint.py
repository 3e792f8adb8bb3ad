"""A fingerprint of the engine's arithmetic, for refactors that must change no number.

Trains tiny runs of every registered method (DFNAS with whole-supernet and path-only
communication, a MAC budget and the child hand-off; FedNAS's search; FedAvg) on 1- and
3-channel toy data, with dropouts and, for some, forked client workers, and prints one
SHA-256 per run of its final tensors, its history (every column but the clocks and the
process's memory peak), its metrics (likewise) and its own files. Run it before and
after a change, on the same machine kind (bitwise equality holds only on one CPU kind)::

    .venv/bin/python scripts/engine_fingerprint.py > before.txt
    ... change the engine ...
    .venv/bin/python scripts/engine_fingerprint.py | diff before.txt -
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import make_method, partition, small_method, tiny_dataset  # noqa: E402

from dfnas.federated.loop import run_federated  # noqa: E402
from dfnas.federated.settings import RunSettings  # noqa: E402
from dfnas.methods import METHODS  # noqa: E402
from dfnas.report.compare import stable  # noqa: E402

# measured, not computed: clocks, the process's memory peak, the machine
UNSTABLE = re.compile(
    r"seconds|peak|cpu|isa|onednn|torch|device_name|threads|gpu|host|python|code_version"
)

TRAIN = dict(rounds=3, local_steps=2, batch_size=8, clients_per_round=3, dropout=0.2)
CASES = {
    "fedavg": lambda ds: make_method(ds, "fedavg", "cnn", **TRAIN),
    "dfnas_paths": lambda ds: small_method(ds, "dfnas", **TRAIN),
    "dfnas_supernet_budget": lambda ds: make_method(
        ds,
        "dfnas",
        "shufflenetv2",
        model_args={"stem": 8, "stages": [[1, 16], [1, 32]], "last": 32},
        options={"search_rounds": 2, "warmup_rounds": 0, "budget_macs": 60000},
        **TRAIN,
    ),
    "fednas": lambda ds: small_method(ds, "fednas", **TRAIN),
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, default=str).encode()


def digest(result, files: dict) -> str:
    """One short SHA-256 per part, so a difference says where it is."""
    tensors = b"".join(
        name.encode() + t.detach().cpu().contiguous().numpy().tobytes()
        for name, t in result.model.state_dict().items()
    )
    parts = {
        "tensors": tensors,
        "history": _json(stable(result.history, UNSTABLE)),
        "metrics": _json(stable(result.metrics, UNSTABLE)),
        "spec": _json(result.model_spec),
        "personalized": _json(result.personalized),
        "files": _json(files),
    }
    return " ".join(f"{k}={_sha(v)}" for k, v in parts.items())


def files_of(method) -> dict:
    """The files the run writes beside the contract (its method's declared ``writes``)."""
    if hasattr(method, "extra_outputs"):  # the code before the declarative spec (issue 23)
        return method.extra_outputs()
    declared = [METHODS.get(n) for n in METHODS.names()]
    return next(d for d in declared if d.implementation is type(method)).files(method)


def main() -> None:
    torch.set_num_threads(1)
    for channels in (1, 3):
        ds = tiny_dataset(channels=channels)
        part = partition(ds, num_clients=4, partitioner="dirichlet", alpha=0.5)
        for name, build in CASES.items():
            for workers in (1, 2) if name in ("dfnas_paths", "fednas") else (1,):
                method = build(ds)
                result = run_federated(
                    method,
                    ds,
                    part,
                    seed=0,
                    settings=RunSettings(device="cpu", client_workers=workers),
                    log=lambda *_: None,
                )
                fp = digest(result, files_of(method))
                print(f"{name} channels={channels} workers={workers} {fp}", flush=True)


if __name__ == "__main__":
    main()
