"""Federated methods by name; one method is one file that registers itself::

    from dfnas.methods import METHODS
    spec = METHODS.get("fedavg")       # its declaration (methods.spec.MethodSpec)
    method = spec.build(setup)         # the object a job trains with

Every module of this package is imported on the first lookup of ``METHODS``, so a new
file is found without editing a list, and importing the package alone costs no torch. A
method in a package of your own is found through the ``dfnas.methods`` entry point group
(``[project.entry-points."dfnas.methods"] mine = "my_pkg.my_method"``).
"""

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from dfnas.methods.spec import METHODS, MethodSpec
from dfnas.methods.stages import RunFigure, Stage

# modules that define the machinery, not a method (a method is a module or a package)
_NOT_METHODS = {"base", "options", "registry", "spec", "stages"}


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in _NOT_METHODS:
            importlib.import_module(f"{__name__}.{info.name}")
    for entry in entry_points(group="dfnas.methods"):
        importlib.import_module(entry.value)


# found on the first lookup (MethodRegistry): importing this package costs no torch
METHODS.discover_with(_discover)

_LAZY = {"FedMethod", "MethodSetup", "StepContext"}  # the implementation's base: torch


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from dfnas.methods import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "FedMethod", "MethodSetup", "MethodSpec", "RunFigure", "Stage", "StepContext"]
