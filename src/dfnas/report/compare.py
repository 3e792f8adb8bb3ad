"""Whether two result folders of one run and seed computed the same numbers.

Bitwise equality holds only on one CPU kind with one torch build, so both folders must
come from the same kind (docs/speed.md, "Reproducibility across machines"). What is
compared is what the run computed: its final tensors, metrics.json, model.json,
history.csv and the files its method writes beside them; never what was measured
(clocks, memory peaks, latency) or where it ran (the provenance)::

    compare_run(Path("results/a/runs/.../dfnas/seed0"), Path("archive/a/runs/.../dfnas/seed0"))
    []  # nothing differs

A folder of the archive (``report.archive``) keeps its weights as one digest instead of
model.pt; ``weights_digest`` reads either, so a rerun compares with an archived run as
with another rerun.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import torch

# measured, not computed; or where the run came from
UNSTABLE = re.compile(
    r"seconds|peak|wall|compute_h|latency_ms|cpu|isa|onednn|torch|device_name|threads|gpu"
    r"|code_version|client_workers|provenance|experiment"
)

# what the archive keeps in place of model.pt (report.archive)
LEFT_OUT = "left_out.json"
OWN_FILES_NOT_COMPARED = {"metrics.json", "model.json", "config.json", LEFT_OUT}


def stable(obj: Any, unstable: re.Pattern = UNSTABLE) -> Any:
    """``obj`` without the entries whose key ``unstable`` matches, at any depth."""
    if isinstance(obj, dict):
        return {k: stable(v, unstable) for k, v in obj.items() if not unstable.search(k)}
    if isinstance(obj, list):
        return [stable(v, unstable) for v in obj]
    return obj


def tensor_digest(path: Path) -> dict[str, Any]:
    """A state_dict file as one SHA-256 over every tensor's name, dtype, shape and bytes:
    equal exactly when ``torch.equal`` holds for every tensor (and the names match)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    h = hashlib.sha256()
    for name, t in state.items():
        t = t.detach().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return {"tensors": len(state), "sha256": h.hexdigest()}


def weights_digest(run_dir: Path) -> dict[str, Any] | None:
    """The run's final weights as a digest: from model.pt, or the archive's record of it
    (left_out.json)."""
    if (run_dir / "model.pt").exists():
        return tensor_digest(run_dir / "model.pt")
    if (run_dir / LEFT_OUT).exists():
        return json.loads((run_dir / LEFT_OUT).read_text())["model.pt"]
    return None


def compare_run(a: Path, b: Path) -> list[str]:
    """What differs between one run's two result folders (empty: nothing)."""
    diffs = []
    wa, wb = weights_digest(a), weights_digest(b)
    if wa is None or wb is None:
        diffs.append(f"model.pt: missing in {a if wa is None else b}")
    elif wa != wb:
        first = _first_differing_tensor(a / "model.pt", b / "model.pt")
        where = f", first {first}" if first else ""
        counts = f"{wa['tensors']} vs {wb['tensors']} tensors"
        diffs.append(f"model.pt: tensors differ ({counts}{where})")
    for name in ("metrics.json", "model.json"):
        if stable(json.loads((a / name).read_text())) != stable(json.loads((b / name).read_text())):
            diffs.append(f"{name}: {', '.join(_differing_keys(a / name, b / name))}")
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    cols = [c for c in ha.columns if not UNSTABLE.search(c)]
    if list(ha.columns) != list(hb.columns) or not ha[cols].equals(hb[cols]):
        diffs.append("history.csv")
    own = {p.name for p in a.glob("*.json")} - OWN_FILES_NOT_COMPARED
    for name in sorted(own):
        if not (b / name).exists():
            diffs.append(f"{name}: missing in {b}")
        elif json.loads((a / name).read_text()) != json.loads((b / name).read_text()):
            diffs.append(name)
    return diffs


def _first_differing_tensor(a: Path, b: Path) -> str | None:
    """The first entry of the state dicts that differs, where both files are here (an
    archived run keeps only the digest, which cannot say)."""
    if not (a.exists() and b.exists()):
        return None
    sa, sb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    for key in sa:
        if key not in sb or not torch.equal(sa[key], sb[key]):
            return key
    return next((key for key in sb if key not in sa), None)


def _differing_keys(a: Path, b: Path) -> list[str]:
    """The top-level keys whose computed values differ (a reader's first clue)."""
    ja, jb = stable(json.loads(a.read_text())), stable(json.loads(b.read_text()))
    keys = sorted(set(ja) | set(jb))
    return [k for k in keys if ja.get(k) != jb.get(k)][:5]
