"""A checkpoint after every round, so a killed run resumes where it stopped.

Everything a later round depends on is in it: the server's network, the method's own
server state, what clients keep between rounds, the history so far and the running cost
totals. Client randomness is a pure function of (seed, round, client), so no generator
state needs saving. A checkpoint from a different run (other settings, seed or partition)
is ignored, never resumed.

A checkpoint is trusted only as far as it is checked: it is loaded with
``weights_only=True`` (tensors and plain containers, never code, even from a planted file),
and only after the SHA-256 of its bytes matches the one written beside it
(``checkpoint.pt.sha256``), so flipped bytes inside a tensor are caught before a round
trains on them. A mismatch is reported in one line and the run starts over.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dfnas.io import atomic_path, write_text


@dataclass(frozen=True)
class CheckpointFile:
    """Where a run checkpoints, and the fingerprint of the run it belongs to: a file
    whose fingerprint differs (another config, seed or partition) is never resumed."""

    path: Path
    fingerprint: str


def fingerprint(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    blob = buffer.getvalue()
    # the digest first: a kill between the two renames leaves an old checkpoint with a new
    # digest, which is refused (start over), never an unchecked checkpoint
    write_text(_digest_path(path), hashlib.sha256(blob).hexdigest() + "\n")
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def remove_checkpoint(path: Path) -> None:
    """Once the run's results are written, its checkpoint and digest go."""
    path.unlink(missing_ok=True)
    _digest_path(path).unlink(missing_ok=True)


def load_checkpoint(
    path: Path, expected_fingerprint: str, log: Any = print
) -> dict[str, Any] | None:
    if not path.exists():
        return None
    blob = path.read_bytes()
    digest = _digest_path(path)
    expected = digest.read_text().strip() if digest.exists() else None
    if expected != hashlib.sha256(blob).hexdigest():
        log(f"ignoring checkpoint {path}: its bytes do not match {digest.name}; starting over")
        return None
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign file: start over rather than trust it
        log(f"ignoring unreadable checkpoint {path} ({type(exc).__name__}); starting over")
        return None
    if state.get("fingerprint") != expected_fingerprint:
        log(f"ignoring checkpoint {path}: it belongs to other settings")
        return None
    return state
