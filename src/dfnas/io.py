"""Atomic file output and checksums.

Every result is written to a temporary file beside its target and renamed into place,
so a job killed midway never leaves a file that a later stage (or Snakemake) would trust.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dfnas.errors import DfnasError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    A write that fails because the disk is full says so in one line (torch.save reports
    it as an 'unexpected pos' RuntimeError, numpy and open() as an OSError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:
        if tmp_path.exists():
            tmp_path.unlink()  # free what the failed write took before measuring
        if getattr(exc, "errno", None) == errno.ENOSPC or _disk_full(path.parent):
            raise DfnasError(
                f"{path}: no space left on the device ({shutil.disk_usage(path.parent).free} "
                "bytes free there); free some and rerun: a killed run resumes from its "
                "last checkpoint"
            ) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _disk_full(folder: Path, margin: int = 1 << 20) -> bool:
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def write_atomic(path: str | Path, writer: Callable[[IO[Any]], None], mode: str = "w") -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        writer(fh)


def write_text(path: str | Path, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text))


def write_json(path: str | Path, obj: Any) -> None:
    """Strict JSON: JSON has no NaN or infinity, so a value that is not a finite number
    (a metric nothing measured) is written as null, which every JSON reader accepts."""
    loose = json.dumps(obj, default=_jsonable)
    strict = json.loads(loose, parse_constant=lambda _: None)
    write_text(path, json.dumps(strict, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def _jsonable(obj: Any) -> Any:
    # numpy scalars and arrays reach json through their Python equivalents
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
