"""FEMNIST in LEAF's json format, with the writer as the natural client id.

LEAF writes ``{"users": [...], "num_samples": [...], "user_data": {user: {"x": [[784
floats in 0..1]], "y": [labels]}}}`` files under ``data/train`` and ``data/test``. We read
every ``*.json`` under ``<root>/femnist/train`` and ``<root>/femnist/test`` (run LEAF's
preprocessing to produce them; there is no single archive to download). LEAF stores ink
as low values, so pixels are kept as given, scaled to 0..255.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dfnas.data.base import ImageDataset
from dfnas.data.registry import DATASETS
from dfnas.errors import DatasetError

# LEAF FEMNIST labels: 10 digits, 26 upper-case, 26 lower-case letters
CLASSES = [str(d) for d in range(10)] + [chr(c) for c in range(65, 91)] + [
    chr(c) for c in range(97, 123)
]


def _read_split(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DatasetError(
            f"femnist: no LEAF json files under {folder}; run LEAF's femnist preprocessing "
            "and put its data/train and data/test json files in femnist/train and femnist/test"
        )
    xs, ys, writers = [], [], []
    for path in files:
        try:
            with open(path) as fh:
                blob = json.load(fh)
            users, user_data = blob["users"], blob["user_data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: not a LEAF json file ({type(exc).__name__}: {exc})") from None
        for user in users:
            try:
                x = np.asarray(user_data[user]["x"], dtype=np.float32)
                y = np.asarray(user_data[user]["y"], dtype=np.int64)
            except (KeyError, ValueError, TypeError) as exc:
                raise DatasetError(f"{path}: user {user!r} has no valid x/y ({exc})") from None
            if x.ndim != 2 or x.shape[1] != 28 * 28 or len(x) != len(y):
                raise DatasetError(
                    f"{path}: user {user!r} needs x of shape (n, 784) and n labels, "
                    f"got {x.shape} and {y.shape}"
                )
            if x.size and (x.min() < 0 or x.max() > 1):
                raise DatasetError(f"{path}: user {user!r} pixels must lie in [0, 1]")
            xs.append(np.rint(x * 255).astype(np.uint8).reshape(-1, 1, 28, 28))
            ys.append(y)
            writers.extend([user] * len(y))
    return np.concatenate(xs), np.concatenate(ys), np.asarray(writers)


@DATASETS.register("femnist")
def load_femnist(root: Path) -> ImageDataset:
    base = Path(root) / "femnist"
    x_tr, y_tr, writers = _read_split(base / "train")
    x_te, y_te, _ = _read_split(base / "test")
    return ImageDataset(
        name="femnist",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        classes=CLASSES,
        client_ids=writers,
    )
