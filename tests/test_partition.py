"""Partition properties: disjoint, complete, minimum size, seeded, skew grows as alpha shrinks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfnas.errors import CacheError, ConfigError, DatasetError, DfnasError
from dfnas.partition import PARTITIONERS, make_partition
from dfnas.partition.stage import FILES, read_partition, write_partition
from dfnas.partition.stats import heterogeneity, label_counts

SPECS = {
    "iid": {"partitioner": "iid", "num_clients": 7},
    "dirichlet": {"partitioner": "dirichlet", "num_clients": 7, "alpha": 0.5},
    "shards": {"partitioner": "shards", "num_clients": 7, "shards_per_client": 2},
    "pathological": {"partitioner": "pathological", "num_clients": 7, "classes_per_client": 3},
}


def _all(part):
    return np.concatenate([*part.train, *part.test])


def test_every_partitioner_is_covered():
    assert set(PARTITIONERS.names()) == {*SPECS, "natural"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_disjoint_and_seeded(digits, name):
    part = make_partition(digits.y_train, SPECS[name])
    idx = _all(part)
    assert len(idx) == len(np.unique(idx)), "a sample is held by two clients"
    assert part.num_clients == 7
    again = make_partition(digits.y_train, SPECS[name])
    assert part.checksum() == again.checksum()
    other = make_partition(digits.y_train, {**SPECS[name], "seed": 7})
    assert part.checksum() != other.checksum()


@pytest.mark.parametrize("name", ["iid", "dirichlet"])
def test_complete(digits, name):
    part = make_partition(digits.y_train, SPECS[name])
    assert np.array_equal(np.sort(_all(part)), np.arange(len(digits.y_train)))


def test_local_test_split(digits):
    part = make_partition(digits.y_train, {**SPECS["iid"], "local_test_fraction": 0.25})
    for tr, te in zip(part.train, part.test, strict=True):
        assert not set(tr) & set(te)
        assert abs(len(te) / (len(tr) + len(te)) - 0.25) < 0.02
    none = make_partition(digits.y_train, {**SPECS["iid"], "local_test_fraction": 0.0})
    assert all(len(te) == 0 for te in none.test)


def test_pathological_classes_per_client(digits):
    part = make_partition(digits.y_train, SPECS["pathological"])
    for tr, te in zip(part.train, part.test, strict=True):
        assert len(np.unique(digits.y_train[np.concatenate([tr, te])])) == 3


def test_smaller_alpha_more_skew(digits):
    def skew(alpha):
        tvs = []
        for seed in range(3):
            part = make_partition(
                digits.y_train, {**SPECS["dirichlet"], "alpha": alpha, "seed": seed}
            )
            counts = label_counts(
                digits.y_train,
                [np.concatenate(p) for p in zip(part.train, part.test, strict=True)],
                10,
            )
            tvs.append(heterogeneity(counts)["mean_tv_distance"])
        return np.mean(tvs)

    s01, s1, s100 = skew(0.1), skew(1.0), skew(100.0)
    assert s01 > s1 > s100
    assert s100 < 0.15


def test_min_partition_size_enforced_or_clear_error(digits):
    part = make_partition(digits.y_train, {**SPECS["dirichlet"], "min_partition_size": 40})
    assert min(len(a) + len(b) for a, b in zip(part.train, part.test, strict=True)) >= 40
    with pytest.raises(DfnasError, match="min_partition_size|partitioner failed"):
        make_partition(
            digits.y_train,
            {
                "partitioner": "dirichlet",
                "num_clients": 100,
                "alpha": 0.05,
                "min_partition_size": 14,
            },
        )


def test_too_many_clients_is_an_error():
    with pytest.raises(DfnasError, match="num_clients: 20 clients for 10 train samples"):
        make_partition(np.arange(10) % 2, {"partitioner": "iid", "num_clients": 20})


def test_foreign_parameter_is_an_error(digits):
    with pytest.raises(DfnasError, match="alpha: not a parameter of partitioner 'iid'"):
        make_partition(digits.y_train, {"partitioner": "iid", "num_clients": 3, "alpha": 1.0})


def test_natural_by_client_id():
    labels = np.arange(30) % 3
    owners = np.repeat(np.array(["w0", "w1", "w2", "w3", "w4"]), 6)
    part = make_partition(labels, {"partitioner": "natural", "num_clients": 3}, client_ids=owners)
    for tr, te in zip(part.train, part.test, strict=True):
        held = np.concatenate([tr, te])
        assert len(held) == 6 and len(set(owners[held])) == 1
    with pytest.raises(ConfigError, match="needs a dataset with client ids"):
        make_partition(labels, {"partitioner": "natural", "num_clients": 3})
    with pytest.raises(ConfigError, match="5 natural clients"):
        make_partition(labels, {"partitioner": "natural", "num_clients": 6}, client_ids=owners)


def test_stage_writes_artifacts_and_checksum(tmp_path, digits):
    write_partition(digits, SPECS["dirichlet"], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    part = read_partition(tmp_path / "partition.json")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["checksum"] == part.checksum()
    assert (tmp_path / "checksum.sha256").read_text().split()[0] == part.checksum()
    assert (tmp_path / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    # an edited assignment no longer matches its checksum
    blob = json.loads((tmp_path / "partition.json").read_text())
    blob["clients"][0]["train"] = blob["clients"][0]["train"][1:]
    (tmp_path / "partition.json").write_text(json.dumps(blob))
    with pytest.raises(DfnasError, match="does not match its recorded checksum"):
        read_partition(tmp_path / "partition.json")
    # a truncated file is one line naming it and what to do, not a JSONDecodeError
    (tmp_path / "partition.json").write_text(json.dumps(blob)[:100])
    with pytest.raises(DfnasError, match=r"not a readable partition .*delete its folder"):
        read_partition(tmp_path / "partition.json")
    # a mistyped path is the caller's: no cache to rebuild, so not a CacheError
    with pytest.raises(DfnasError, match=r"partiton\.json: no such file") as missing:
        read_partition(tmp_path / "partiton.json")
    assert not isinstance(missing.value, CacheError)


def test_changed_dataset_cache_is_refused(tmp_path, digits):
    from dfnas.data import load_cached
    from dfnas.data.base import file_sha256, verify_cache

    digits.save(tmp_path / "data.npz")
    (tmp_path / "info.json").write_text(json.dumps({"sha256": file_sha256(tmp_path / "data.npz")}))
    verify_cache(tmp_path / "data.npz")
    assert load_cached(tmp_path / "data.npz").name == digits.name
    blob = bytearray((tmp_path / "data.npz").read_bytes())
    blob[-100] ^= 1
    (tmp_path / "data.npz").write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match=r"data\.npz: contents changed .*delete its folder"):
        load_cached(tmp_path / "data.npz")
    with pytest.raises(DatasetError, match=r"dta\.npz: no such file") as missing:
        load_cached(tmp_path / "dta.npz")
    assert not isinstance(missing.value, CacheError)
