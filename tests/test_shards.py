"""A deployed client's shard holds exactly its partition's images, in the partition's
order, and gives back the very train and validation indices the simulation uses; a file
that is not a shard is one line naming it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_dataset

from dfnas.deploy.shards import read_shard, write_shards
from dfnas.errors import DfnasError
from dfnas.federated.data import split_validation
from dfnas.partition.stage import read_partition, write_partition


def test_shards_hold_each_clients_images_and_its_validation_split(tmp_path):
    ds = tiny_dataset(channels=3)
    ds.save(tmp_path / "data.npz")
    write_partition(ds, {"partitioner": "iid", "num_clients": 3},
                    tmp_path / "part")  # fmt: skip
    part_json = tmp_path / "part" / "partition.json"
    part = read_partition(part_json)
    paths = write_shards(tmp_path / "data.npz", part_json, tmp_path / "s")
    assert [p.name for p in paths] == ["client0.npz", "client1.npz", "client2.npz"]
    for k, idx in enumerate(part.train):
        shard = read_shard(paths[k])
        assert shard.client == k and shard.num_classes == ds.num_classes
        np.testing.assert_array_equal(shard.x, ds.x_train[idx])
        np.testing.assert_array_equal(shard.y, ds.y_train[idx])
        train, val = split_validation(k, shard.indices, 0.5)
        ref_train, ref_val = split_validation(k, np.asarray(idx), 0.5)
        np.testing.assert_array_equal(shard.x[shard.positions(train)], ds.x_train[ref_train])
        np.testing.assert_array_equal(shard.x[shard.positions(val)], ds.x_train[ref_val])
    with pytest.raises(DfnasError, match="indices outside its shard"):
        read_shard(paths[0]).positions(np.asarray(part.train[1][:1]))


def test_a_file_that_is_not_a_shard_is_one_line(tmp_path):
    bad = tmp_path / "client0.npz"
    np.savez(bad, x=np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(DfnasError, match=r"client0.npz: not a client shard \(no 'y' array\)"):
        read_shard(bad)
    bad.write_bytes(b"not an npz")
    with pytest.raises(DfnasError, match="client0.npz: cannot read the client shard"):
        read_shard(bad)
