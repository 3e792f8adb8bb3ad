"""Shared caches: checked at the workflow's start, rebuilt when their bytes changed, never
trusted.

Every experiment reads the same ``results/datasets/<key>/data.npz`` and
``results/partitions/<key>/<key>/partition.json``. A byte changed in one of them (a disk
fault, a stray write) must neither reach a run nor make Snakemake rerun the partition
job, which first deletes its outputs, the ones every other experiment reads. So the
workflow, before any job, checks each cache it plans to read against the digest recorded
when it was written (``data.npz``: its SHA-256 in ``info.json``; ``partition.json``: the
checksum of its assignment, kept inside it and again in ``checksum.sha256``).

A cache that fails is rebuilt beside it from its spec, by the same code as its stage, and
the rebuild replaces it only where it reproduces the recorded digest: the bytes that the
finished runs read. Replaced files are dated back to when the stage wrote them, so nothing
built from them reruns. A rebuild that gives other bytes (an older dfnas wrote the cache, or the
source data changed) stops the workflow with one line naming the folder to delete.

A check is remembered by the file's size and modification time (``verified.json``), so an
unchanged cache costs one ``stat`` per parse. A byte flipped in place keeps both; the job
that loads the file checks its bytes again (``data.base.load_cached``,
``partition.stage.read_partition``), stops in one line, and forgets the memo
(``forget``), so the next start rebuilds the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfnas.errors import CacheError, DfnasError
from dfnas.io import atomic_path

MEMO = Path(".snakemake") / "dfnas" / "verified.json"


@dataclass(frozen=True)
class DatasetCache:
    """A ``results/datasets/<key>`` folder and what builds it (the dataset rule's params)."""

    folder: Path
    name: str
    options: dict[str, Any]
    data_root: str


@dataclass(frozen=True)
class PartitionCache:
    """A ``results/partitions/<key>/<key>`` folder, the cache it splits, and its spec."""

    folder: Path
    data: Path
    spec: dict[str, Any]


def build_dataset(name: str, options: dict[str, Any], data_root: str, out: Path):
    """The dataset stage: load and verify once, write ``data.npz`` and ``info.json``
    (with the SHA-256 the workflow checks the cache against)."""
    from dfnas.data import load_dataset
    from dfnas.data.base import file_sha256
    from dfnas.io import write_json

    ds = load_dataset(name, root=data_root, **options)
    ds.save(out / "data.npz")
    write_json(out / "info.json", ds.info() | {"sha256": file_sha256(out / "data.npz")})
    return ds


def dataset_intact(folder: Path) -> bool:
    from dfnas.data.base import verify_cache

    try:
        verify_cache(folder / "data.npz")
    except DfnasError:
        return False
    return True


def partition_intact(folder: Path) -> bool:
    """The assignment matches its checksum in all three records."""
    records = _partition_records(folder)
    return None not in records and len(set(records)) == 1


def repair_dataset(cache: DatasetCache, mtime_ns: int) -> None:
    """Rebuild a dataset cache that failed its check, its files dated ``mtime_ns`` (raises
    ``CacheError`` where the rebuild does not reproduce the bytes the runs read)."""
    from dfnas.data.base import file_sha256

    data = cache.folder / "data.npz"
    try:
        expected = json.loads((cache.folder / "info.json").read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        expected = file_sha256(data)  # the record is what broke: the data must not change
    with tempfile.TemporaryDirectory(dir=cache.folder.parent, prefix=".rebuild-") as tmp:
        try:
            build_dataset(cache.name, cache.options, cache.data_root, Path(tmp))
        except DfnasError as exc:
            raise CacheError(data, f"cannot rebuild it: {exc}") from None
        if file_sha256(Path(tmp) / "data.npz") != expected:
            raise CacheError(data, _DIFFERS)
        _replace(Path(tmp), cache.folder, ("data.npz", "info.json"), mtime_ns)


def repair_partition(cache: PartitionCache, mtime_ns: int) -> None:
    """Rebuild a partition cache that failed its check, from the (intact) dataset cache
    and its spec, its files dated ``mtime_ns`` (raises ``CacheError`` where the
    assignment differs from the record)."""
    from dfnas.data import load_cached
    from dfnas.partition.stage import FILES, read_partition, write_partition

    path = cache.folder / "partition.json"
    expected = _recorded_checksum(cache.folder)
    with tempfile.TemporaryDirectory(dir=cache.folder.parent, prefix=".rebuild-") as tmp:
        write_partition(load_cached(cache.data), cache.spec, tmp)
        if expected is None or read_partition(Path(tmp) / "partition.json").checksum() != expected:
            raise CacheError(path, _DIFFERS)
        _replace(Path(tmp), cache.folder, FILES, mtime_ns)


_DIFFERS = (
    "changed since it was written, and rebuilding it gives other bytes than the runs read "
    "(an older dfnas wrote it, or its source changed); delete its folder and rerun, which "
    "reruns every run on it"
)


def repair_caches(
    datasets: list[DatasetCache],
    partitions: list[PartitionCache],
    memo: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Check every cache that exists (datasets first: a partition is rebuilt from its
    dataset), rebuild those that fail, remember the ones that pass."""
    memo = memo or MEMO
    seen = _read_memo(memo)
    checks = [(c.folder / "data.npz", dataset_intact, repair_dataset, c) for c in datasets]
    checks += [
        (c.folder / "partition.json", partition_intact, repair_partition, c) for c in partitions
    ]
    changed = False
    for path, intact, repair, cache in checks:
        if not path.exists() or seen.get(str(path)) == _stat(path):
            continue
        if not intact(cache.folder):
            say(f"{path}: its bytes changed since it was written; rebuilding it")
            repair(cache, _stage_time(path, seen))
            say(f"{path}: rebuilt, the same bytes the runs read")
        seen[str(path)], changed = _stat(path), True
    if changed:
        _write_memo(memo, seen)


def forget(path: str | Path, memo: Path | None = None) -> None:
    """Drop a cache from the memo: a job found its bytes changed, so the next start checks
    (and rebuilds) it."""
    memo = memo or MEMO
    seen = _read_memo(memo)
    if seen.pop(str(path), None) is not None:
        _write_memo(memo, seen)


def _partition_records(folder: Path) -> list[str | None]:
    """The assignment's checksum as each of its three records holds it, None where one
    cannot be read: ``partition.json``'s own (if its assignment still matches it),
    ``checksum.sha256``, ``summary.json``."""
    from dfnas.partition.stage import read_partition

    records: list[str | None] = [None, None, None]
    with contextlib.suppress(DfnasError):
        records[0] = read_partition(folder / "partition.json").checksum()
    with contextlib.suppress(OSError, IndexError):
        records[1] = (folder / "checksum.sha256").read_text().split()[0]
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        records[2] = json.loads((folder / "summary.json").read_text())["checksum"]
    return records


def _recorded_checksum(folder: Path) -> str | None:
    """The checksum at least two of the three records agree on: whichever one broke, the
    other two say what the runs read."""
    records = [r for r in _partition_records(folder) if r is not None]
    agreed = [r for r in set(records) if records.count(r) >= 2]
    return agreed[0] if agreed else None


def _stage_time(path: Path, seen: dict[str, list[int]]) -> int:
    """When the stage wrote the cache: the time its check last saw, else the oldest file of
    its folder (its log and its other outputs were written by the same job). A fault that
    touched the file made it newer than what was built on it; dated back, nothing reruns."""
    if str(path) in seen:
        return seen[str(path)][1]
    return min(p.stat().st_mtime_ns for p in path.parent.iterdir() if p.is_file())


def _replace(src: Path, dst: Path, names: tuple[str, ...], mtime_ns: int) -> None:
    """Move each rebuilt file whose bytes differ into place, dated no later than the stage
    wrote it (so Snakemake sees nothing newer than what was built on it)."""
    for name in names:
        new, old = src / name, dst / name
        if old.exists() and old.read_bytes() == new.read_bytes():
            continue
        mtime = min(old.stat().st_mtime_ns, mtime_ns) if old.exists() else mtime_ns
        os.replace(new, old)
        os.utime(old, ns=(mtime, mtime))


def _stat(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_memo(memo: Path) -> dict[str, list[int]]:
    try:
        return json.loads(memo.read_text())
    except (OSError, ValueError):
        return {}


def _write_memo(memo: Path, seen: dict[str, list[int]]) -> None:
    memo.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(memo) as tmp:
        Path(tmp).write_text(json.dumps(seen, sort_keys=True))
