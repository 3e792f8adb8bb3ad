"""Registries by name, in the manner of timm's ``register_model``.

Datasets, partitioners, models and methods each have one ``Registry``; an entry registers
itself on import, so adding one touches no other file::

    MODELS = Registry("model")

    @MODELS.register("cnn")
    def cnn(num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module: ...

    MODELS.get("cnn")  # or: unknown model 'cnm'; known: cnn, resnet20
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from dfnas.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table whose lookup failure lists the known names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
