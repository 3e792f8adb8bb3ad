"""Federated methods by name; one method is one file that registers itself::

from dfnas.methods import METHODS
method_cls = METHODS.get("fedavg")
"""

from dfnas.methods import dfnas, fedavg, fednas  # noqa: F401  (registration)
from dfnas.methods.base import FedMethod, MethodSetup, StepContext
from dfnas.methods.registry import METHODS

__all__ = ["METHODS", "FedMethod", "MethodSetup", "StepContext"]
