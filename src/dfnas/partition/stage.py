"""The partition stage: write one partition's artifacts, each atomically.

results/partitions/<dataset>/<partition>/seed<k>/
    partition.json      client -> train and local test indices (+ the spec)
    label_counts.csv    per client and split, samples per class
    summary.json        heterogeneity measures and the partition checksum
    heatmap.png         clients x classes label counts
    checksum.sha256     SHA-256 of the assignment (what a later stage can verify)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dfnas.data import ImageDataset
from dfnas.data.base import REBUILD
from dfnas.errors import CacheError, DatasetError
from dfnas.io import atomic_path, read_json, write_json, write_text
from dfnas.partition.split import ClientPartition, make_partition
from dfnas.partition.stats import heterogeneity, label_counts

FILES = ("partition.json", "label_counts.csv", "summary.json", "heatmap.png", "checksum.sha256")


def write_partition(ds: ImageDataset, spec: dict, out_dir: str | Path) -> ClientPartition:
    out = Path(out_dir)
    part = make_partition(ds.y_train, spec, ds.client_ids)
    checksum = part.checksum()
    train_counts = label_counts(ds.y_train, part.train, ds.num_classes)
    test_counts = label_counts(ds.y_train, part.test, ds.num_classes)
    write_json(
        out / "partition.json",
        {"dataset": ds.name, "spec": spec, "checksum": checksum, **part.to_json()},
    )
    import pandas as pd  # here: a run reads partitions through this module, never writes one

    frames = []
    for split, counts in (("train", train_counts), ("test", test_counts)):
        df = pd.DataFrame(counts, columns=ds.classes)
        df.insert(0, "split", split)
        df.insert(0, "client", np.arange(part.num_clients))
        frames.append(df)
    with atomic_path(out / "label_counts.csv") as tmp:
        pd.concat(frames).to_csv(tmp, index=False)
    summary = {
        "dataset": ds.name,
        "spec": spec,
        "checksum": checksum,
        "train": heterogeneity(train_counts),
        "local_test_samples": int(test_counts.sum()),
        "unassigned_samples": int(len(ds.y_train) - train_counts.sum() - test_counts.sum()),
    }
    write_json(out / "summary.json", summary)
    plot_heatmap(train_counts + test_counts, ds.classes, out / "heatmap.png", title=_title(spec))
    write_text(out / "checksum.sha256", f"{checksum}  partition.json\n")
    return part


def read_partition(path: str | Path) -> ClientPartition:
    """Load ``partition.json``, refusing one whose content no longer matches its checksum
    (a damaged cache, rebuilt at the workflow's start; a missing file is not one)."""
    if not Path(path).is_file():
        raise DatasetError(
            f"{path}: no such file (expected the partition.json a partition job writes)"
        )
    try:
        blob = read_json(path)
        part = ClientPartition.from_json(blob)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise CacheError(
            path, f"not a readable partition ({type(exc).__name__}: {exc}); {REBUILD}"
        ) from None
    if part.checksum() != blob.get("checksum"):
        raise CacheError(path, f"assignment does not match its recorded checksum; {REBUILD}")
    return part


def _title(spec: dict) -> str:
    extras = {k: v for k, v in spec.items() if k not in ("partitioner", "num_clients")}
    args = ", ".join(f"{k}={v}" for k, v in sorted(extras.items()))
    return f"{spec['partitioner']} over {spec['num_clients']} clients\n{args}"


def plot_heatmap(counts: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    n_clients, n_classes = counts.shape
    fig, ax = plt.subplots(figsize=(min(2 + 0.35 * n_classes, 16), min(1.5 + 0.3 * n_clients, 14)))
    sns.heatmap(
        counts,
        ax=ax,
        cmap="viridis",
        annot=counts.size <= 400,
        fmt="d",
        xticklabels=classes if n_classes <= 40 else False,
        yticklabels=n_clients <= 60,
        cbar_kws={"label": "samples"},
    )
    ax.set_xlabel("class")
    ax.set_ylabel("client")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
