"""The dataset registry: loader name -> ``load(root, **options) -> ImageDataset``."""

from __future__ import annotations

from collections.abc import Callable

from dfnas.data.base import ImageDataset
from dfnas.registry import Registry

Loader = Callable[..., ImageDataset]
DATASETS: Registry[Loader] = Registry("dataset loader")
