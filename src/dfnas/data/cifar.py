"""CIFAR-10 and CIFAR-100 in the official python layout.

``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` and
``<root>/cifar-100-python/{train,test,meta}``: the folders the official archives unpack
to. With ``download: true`` the archive is fetched and its published MD5 checked. A file
that is truncated or not in the format (wrong keys, shapes, label range) is rejected with
its name; the pickles are read with the standard library as the format requires, so only
point this at files you trust.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from dfnas.data.base import ImageDataset
from dfnas.data.download import download, missing_files_error
from dfnas.data.registry import DATASETS
from dfnas.errors import DatasetError

CIFAR10 = {
    "folder": "cifar-10-batches-py",
    "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "md5": "c58f30108f718f92721af3b95e74349a",
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
    "meta": "batches.meta",
    "label_key": b"labels",
    "names_key": b"label_names",
    "num_classes": 10,
}
CIFAR100 = {
    "folder": "cifar-100-python",
    "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "md5": "eb9058c3a382ffc7106e4002c42a8d85",
    "train": ["train"],
    "test": ["test"],
    "meta": "meta",
    "label_key": b"fine_labels",
    "names_key": b"fine_label_names",
    "num_classes": 100,
}


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # truncated or foreign files fail in many ways
        raise DatasetError(f"{path}: not a readable CIFAR pickle ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a dict, found {type(obj).__name__}")
    return obj


def _read_batch(path: Path, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if b"data" not in batch or label_key not in batch:
        raise DatasetError(f"{path}: missing the keys 'data' and '{label_key.decode()}'")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise DatasetError(f"{path}: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{path}: labels outside [0, {num_classes})")
    return data.reshape(-1, 3, 32, 32), labels


def _load(name: str, spec: dict, root: Path, download_ok: bool) -> ImageDataset:
    folder = Path(root) / spec["folder"]
    needed = [*spec["train"], *spec["test"], spec["meta"]]
    missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        if not download_ok:
            raise missing_files_error(name, folder, missing, "files not found")
        archive = download(spec["url"], Path(root) / Path(spec["url"]).name, spec["md5"])
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    parts = {
        split: [_read_batch(folder / f, spec["label_key"], spec["num_classes"]) for f in spec[split]]
        for split in ("train", "test")
    }
    meta = _unpickle(folder / spec["meta"])
    if spec["names_key"] not in meta:
        raise DatasetError(f"{folder / spec['meta']}: missing '{spec['names_key'].decode()}'")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec["names_key"]]]
    if len(classes) != spec["num_classes"]:
        raise DatasetError(
            f"{folder / spec['meta']}: {len(classes)} class names, expected {spec['num_classes']}"
        )
    return ImageDataset(
        name=name,
        x_train=np.concatenate([x for x, _ in parts["train"]]),
        y_train=np.concatenate([y for _, y in parts["train"]]),
        x_test=np.concatenate([x for x, _ in parts["test"]]),
        y_test=np.concatenate([y for _, y in parts["test"]]),
        classes=classes,
    )


@DATASETS.register("cifar10")
def load_cifar10(root: Path, download: bool = False) -> ImageDataset:
    return _load("cifar10", CIFAR10, root, download)


@DATASETS.register("cifar100")
def load_cifar100(root: Path, download: bool = False) -> ImageDataset:
    return _load("cifar100", CIFAR100, root, download)
