"""A checkpoint after every round, so a killed run resumes where it stopped.

Everything a later round depends on is in it: the server's network, the method's own
server state, what clients keep between rounds, the history so far and the running cost
totals. Client randomness is a pure function of (seed, round, client), so no generator
state needs saving. A checkpoint from a different run (other settings, seed or partition)
is ignored, never resumed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from dfnas.io import atomic_path


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(
    path: Path, expected_fingerprint: str, log: Any = print
) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a torn or foreign file: start over rather than trust it
        log(f"ignoring unreadable checkpoint {path} ({type(exc).__name__})")
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log(f"ignoring checkpoint {path}: it belongs to other settings")
        return None
    return state
