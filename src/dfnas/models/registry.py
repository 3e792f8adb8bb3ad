"""The model registry: name -> ``build(in_shape, num_classes, **model_args) -> nn.Module``.

Input size and classes come from the dataset, so every registered model works on 8x8
digits, 28x28 MNIST-likes and 32x32 CIFAR. ``model.json`` stores (name, args, shape,
classes), which is all ``build_model`` needs to rebuild a trained network.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from dfnas.errors import ConfigError
from dfnas.registry import Registry

ModelBuilder = Callable[..., nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


def model_params(name: str) -> set[str]:
    return set(list(inspect.signature(MODELS.get(name)).parameters)[2:])


def build_model(
    name: str, in_shape: tuple[int, int, int], num_classes: int, **model_args: Any
) -> nn.Module:
    builder = MODELS.get(name)
    unknown = sorted(set(model_args) - model_params(name))
    if unknown:
        raise ConfigError(
            f"model_args.{unknown[0]}: not an argument of model '{name}' "
            f"(it takes: {', '.join(sorted(model_params(name))) or 'none'})"
        )
    try:
        return builder(tuple(in_shape), int(num_classes), **model_args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model_args: model '{name}' cannot be built ({exc})") from None


def model_spec(
    name: str, in_shape: tuple[int, int, int], num_classes: int, **model_args: Any
) -> dict:
    """What model.json holds: enough to call ``build_model`` again."""
    return {
        "model": name,
        "model_args": model_args,
        "in_shape": list(in_shape),
        "num_classes": num_classes,
    }


def build_from_spec(spec: dict) -> nn.Module:
    return build_model(
        spec["model"], tuple(spec["in_shape"]), spec["num_classes"], **spec["model_args"]
    )
