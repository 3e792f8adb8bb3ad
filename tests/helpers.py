"""Small builders shared by the engine and method tests."""

from __future__ import annotations

import numpy as np
import pytest

from dfnas.data import ImageDataset
from dfnas.federated.config import TrainConfig
from dfnas.federated.settings import RunSettings
from dfnas.methods import METHODS, MethodSetup
from dfnas.partition import make_partition

# how the tests run a simulation: on the CPU, clients one after another in this process
CPU = RunSettings(device="cpu")


def tiny_dataset(n: int = 120, size: int = 8, channels: int = 1, seed: int = 0) -> ImageDataset:
    """Learnable toy images: the class sets the mean brightness of one quadrant."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.integers(0, 80, (n, channels, size, size))
    half = size // 2
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, :, r * half : (r + 1) * half, c * half : (c + 1) * half] += 150
    n_test = n // 4
    return ImageDataset(
        name="tiny",
        x_train=x[n_test:].astype(np.uint8),
        y_train=y[n_test:].astype(np.int64),
        x_test=x[:n_test].astype(np.uint8),
        y_test=y[:n_test].astype(np.int64),
        classes=["a", "b", "c", "d"],
    )


# each registered method at a size that trains a few rounds in seconds (the rest default)
SMALL = {
    "dfnas": {
        "model_args": {"stem": 8, "stages": [[1, 16], [1, 32]], "last": 32},
        "options": {"search_rounds": 2, "warmup_rounds": 0, "communication": "paths"},
    },
    "fednas": {"model_args": {"C": 2, "layers": 3}},
}


def make_method(
    ds: ImageDataset,
    name: str = "fedavg",
    model: str = "cnn",
    options=None,
    model_args=None,
    **train,
):
    train.setdefault("personalize_epochs", 0)
    return METHODS.get(name).build(
        MethodSetup(
            model=model,
            model_args=model_args or {},
            in_shape=ds.in_shape,
            num_classes=ds.num_classes,
            train=TrainConfig.from_dict(train),
            options=options or {},
        )
    )


def small_method(ds: ImageDataset, name: str, **train):
    """Registered method ``name`` at its SMALL size on its default model."""
    small = SMALL.get(name, {})
    return make_method(
        ds,
        name,
        METHODS.get(name).default_model,
        options=small.get("options"),
        model_args=small.get("model_args"),
        **train,
    )


def partition(ds: ImageDataset, num_clients: int = 4, **spec):
    spec = {"partitioner": "iid", "num_clients": num_clients, **spec}
    return make_partition(ds.y_train, spec)


def assert_refused(cfg: dict, edit, message: str) -> None:
    """``edit(cfg)`` makes a config that check_config refuses with one line matching
    ``message``."""
    from dfnas.config import check_config
    from dfnas.errors import ConfigError

    edit(cfg)
    with pytest.raises(ConfigError, match=message) as info:
        check_config(cfg)
    assert "\n" not in str(info.value)
