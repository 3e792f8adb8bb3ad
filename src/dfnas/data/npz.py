"""Bring your own arrays: benchmark on any image data without writing code.

An ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (images uint8 as
(N, C, H, W), or (N, H, W) for grey) and optionally ``client_ids`` (one per train sample,
for the ``natural`` partitioner) and ``classes`` (names). Config::

    datasets:
      my_scans: {loader: npz, path: data/my_scans.npz}
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dfnas.data.base import ImageDataset
from dfnas.data.registry import DATASETS
from dfnas.errors import DatasetError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")


def find_npz(root: str | Path, path: str) -> Path | None:
    """``path`` as given (absolute, or relative to the working directory), else under
    ``root``; None when neither exists. The config check and the loader both use it."""
    file = Path(path)
    if not file.is_absolute() and not file.exists():
        file = Path(root) / file
    return file if file.exists() else None


@DATASETS.register("npz")
def load_npz(root: Path, path: str) -> ImageDataset:
    file = find_npz(root, path)
    if file is None:
        raise DatasetError(f"npz dataset: file {path} not found (nor under {root})")
    try:
        with np.load(file, allow_pickle=False) as z:
            missing = [k for k in REQUIRED if k not in z.files]
            if missing:
                raise DatasetError(f"{file}: missing arrays {', '.join(missing)}")
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{file}: not a readable .npz file ({exc})") from None
    x_tr, x_te = (_as_nchw(file, k, arrays[k]) for k in ("x_train", "x_test"))
    y_tr, y_te = (_as_labels(file, k, arrays[k]) for k in ("y_train", "y_test"))
    for key, y in (("y_train", y_tr), ("y_test", y_te)):
        if not len(y):
            raise DatasetError(f"{file}: '{key}' is empty; both splits need samples")
    num_classes = int(max(y_tr.max(), y_te.max())) + 1
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else None
    if classes is not None and len(classes) < num_classes:
        raise DatasetError(f"{file}: 'classes' names {len(classes)} classes, labels need {num_classes}")
    if classes is None:
        # inferred classes are 0..max: a label far above the rest (a typo, 1000 for 10)
        # would silently make a problem of max + 1 classes, most of them empty
        seen = np.union1d(y_tr, y_te)
        if len(seen) != num_classes:
            raise DatasetError(
                f"{file}: labels must be 0..K-1 with every class present, got {len(seen)} "
                f"distinct labels up to {num_classes - 1}; relabel, or give 'classes'"
            )
    return ImageDataset(
        name="npz",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        classes=classes or [str(i) for i in range(num_classes)],
        client_ids=arrays.get("client_ids"),
    )


def _as_nchw(file: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        raise DatasetError(f"{file}: '{key}' must be uint8 images, got {x.dtype}")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise DatasetError(f"{file}: '{key}' must be (N, C, H, W) or (N, H, W), got {x.shape}")
    return x


def _as_labels(file: Path, key: str, y: np.ndarray) -> np.ndarray:
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{file}: '{key}' must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{file}: '{key}' has negative labels")
    return y.astype(np.int64)
