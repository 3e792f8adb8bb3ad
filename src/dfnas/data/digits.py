"""UCI handwritten digits, embedded in scikit-learn: the default dataset, no download.

1,797 8x8 grey images with values 0..16; scaled to 0..255 and split 80/20, stratified,
with a fixed seed so the split is the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfnas.data.base import ImageDataset
from dfnas.data.registry import DATASETS

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@DATASETS.register("digits")
def load_digits(root: Path | None = None) -> ImageDataset:
    # imported here: scikit-learn takes ~0.9 s to import, and every run would pay it
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return ImageDataset(
        name="digits",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
        classes=[str(i) for i in range(10)],
    )
