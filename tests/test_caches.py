"""Shared caches are rebuilt, never trusted: a dataset or partition cache whose bytes changed
is rebuilt at the workflow's start to the bytes the runs read, keeping its modification
time (so nothing built on it reruns); a rebuild that differs stops in one line; a job
that finds a byte flipped in place stops in one line and forgets the check, so the next
start rebuilds the cache. The workflow around it: tests/test_workflow.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dfnas.caches import DatasetCache, PartitionCache, build_dataset, repair_caches
from dfnas.cli import main
from dfnas.errors import CacheError
from dfnas.partition.stage import write_partition

SPEC = {"partitioner": "iid", "num_clients": 3}


@pytest.fixture
def caches(tmp_path: Path) -> tuple[DatasetCache, PartitionCache, Path]:
    data = DatasetCache(tmp_path / "datasets" / "digits", "digits", {}, str(tmp_path / "raw"))
    data.folder.mkdir(parents=True)
    ds = build_dataset(data.name, data.options, data.data_root, data.folder)
    part = PartitionCache(tmp_path / "partitions" / "iid", data.folder / "data.npz", SPEC)
    part.folder.mkdir(parents=True)
    write_partition(ds, SPEC, part.folder)
    return data, part, tmp_path / "verified.json"


def _flip(path: Path, at: int, keep_time: bool = False) -> None:
    stat = path.stat()
    blob = bytearray(path.read_bytes())
    blob[at] ^= 0x01
    path.write_bytes(bytes(blob))
    if keep_time:  # a fault on disk: the file's size and time stay as they were
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _snapshot(*folders: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for f in folders for p in f.iterdir()}


def _flip_an_index(path: Path) -> None:
    """One client's first index changed: valid JSON, another assignment."""
    blob = json.loads(path.read_text())
    blob["clients"][0]["train"][0] = blob["clients"][1]["train"][0]
    path.write_text(json.dumps(blob))


def test_corrupt_caches_are_rebuilt_to_the_bytes_and_times_the_runs_read(caches):
    data, part, memo = caches
    repair_caches([data], [part], memo=memo, say=lambda _: None)  # a start: checked
    before = _snapshot(data.folder, part.folder)
    _flip(data.folder / "data.npz", 5000)
    _flip_an_index(part.folder / "partition.json")
    said: list[str] = []
    repair_caches([data], [part], memo=memo, say=said.append)
    assert _snapshot(data.folder, part.folder) == before
    assert [s.split(": ", 1)[1] for s in said] == [
        "its bytes changed since it was written; rebuilding it",
        "rebuilt, the same bytes the runs read",
    ] * 2
    said.clear()
    repair_caches([data], [part], memo=memo, say=said.append)
    assert said == []  # checked, and remembered


def test_a_broken_record_is_rebuilt_without_changing_the_data(caches):
    data, part, memo = caches
    before = _snapshot(data.folder, part.folder)
    (data.folder / "info.json").write_text("{not json")
    (part.folder / "checksum.sha256").write_text("0" * 64 + "  partition.json\n")
    repair_caches([data], [part], memo=memo, say=lambda _: None)
    after = _snapshot(data.folder, part.folder)
    for path, (blob, mtime) in before.items():
        assert after[path][0] == blob, path
        assert after[path][1] <= mtime, path  # never newer than the stage wrote it


def test_corrupt_caches_never_checked_before_are_dated_no_later_than_their_stage(caches):
    data, part, memo = caches
    (data.folder / "dataset.log").write_text("")  # the job's log, written before its outputs
    os.utime(data.folder / "dataset.log", ns=(1, 1))
    _flip(data.folder / "data.npz", 5000)
    repair_caches([data], [part], memo=memo, say=lambda _: None)
    assert (data.folder / "data.npz").stat().st_mtime_ns == 1


def test_a_rebuild_that_gives_other_bytes_stops_in_one_line(caches):
    data, _, memo = caches
    info = json.loads((data.folder / "info.json").read_text())
    (data.folder / "info.json").write_text(json.dumps(info | {"sha256": "0" * 64}))
    with pytest.raises(CacheError, match=r"data\.npz: changed since .* delete its folder") as err:
        repair_caches([data], [], memo=memo, say=lambda _: None)
    assert "\n" not in str(err.value)
    assert not list(data.folder.parent.glob(".rebuild-*"))  # nothing half-written left


def test_a_job_that_finds_a_flipped_byte_stops_and_the_next_start_rebuilds(
    caches, capsys, monkeypatch
):
    data, part, memo = caches
    repair_caches([data], [part], memo=memo, say=lambda _: None)
    before = _snapshot(data.folder)
    _flip(data.folder / "data.npz", 5000, keep_time=True)
    said: list[str] = []
    repair_caches([data], [part], memo=memo, say=said.append)
    assert said == []  # same size and time: the start does not hash it again
    monkeypatch.setattr("dfnas.caches.MEMO", memo)
    out = part.folder.parent / "other"
    args = ["partition", "--data", str(data.folder / "data.npz"), "--spec", json.dumps(SPEC)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "contents changed since the dataset stage wrote it" in err
    assert str(data.folder / "data.npz") not in json.loads(memo.read_text())  # forgotten
    repair_caches([data], [part], memo=memo, say=said.append)
    assert said[-1].endswith("rebuilt, the same bytes the runs read")
    assert _snapshot(data.folder) == before
