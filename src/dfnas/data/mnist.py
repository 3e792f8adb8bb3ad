"""MNIST and Fashion-MNIST from their IDX files (gzip), as published.

``<root>/<folder>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. The IDX header gives
the dimensions, and the payload must hold exactly that many bytes: a truncated file is an
error, never a short array.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from dfnas.data.base import ImageDataset
from dfnas.data.download import download, missing_files_error
from dfnas.data.registry import DATASETS
from dfnas.errors import DatasetError

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST = {
    "folder": "mnist",
    "base_url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "md5": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "classes": [str(i) for i in range(10)],
}
FASHION_MNIST = {
    "folder": "fashion_mnist",
    "base_url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "md5": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "classes": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}
# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions
_UBYTE = 0x08


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse one gzip IDX file of unsigned bytes with ``ndim`` dimensions."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a readable gzip file ({exc})") from None
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: too short for an IDX header")
    zero, dtype, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UBYTE or dims != ndim:
        raise DatasetError(
            f"{path}: IDX header says type 0x{dtype:02x} with {dims} dims, "
            f"expected unsigned bytes with {ndim}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    payload = raw[4 + 4 * ndim :]
    expected = int(np.prod(shape))
    if len(payload) != expected:
        raise DatasetError(
            f"{path}: header promises {expected} bytes of data, file holds {len(payload)}"
        )
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


def _load(name: str, spec: dict, root: Path, download_ok: bool) -> ImageDataset:
    folder = Path(root) / spec["folder"]
    missing = [f for f in FILES.values() if not (folder / f).exists()]
    if missing:
        if not download_ok:
            raise missing_files_error(name, folder, missing, "files not found")
        for f in missing:
            download(spec["base_url"] + f, folder / f, spec["md5"][f])
    arrays = {
        key: read_idx(folder / fname, 3 if key.endswith("images") else 1)
        for key, fname in FILES.items()
    }
    return ImageDataset(
        name=name,
        x_train=arrays["train_images"][:, None],
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=arrays["test_images"][:, None],
        y_test=arrays["test_labels"].astype(np.int64),
        classes=list(spec["classes"]),
    )


@DATASETS.register("mnist")
def load_mnist(root: Path, download: bool = False) -> ImageDataset:
    return _load("mnist", MNIST, root, download)


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(root: Path, download: bool = False) -> ImageDataset:
    return _load("fashion_mnist", FASHION_MNIST, root, download)
