"""The method registry: name -> ``FedMethod`` subclass."""

from dfnas.methods.base import FedMethod
from dfnas.registry import Registry

METHODS: Registry[type[FedMethod]] = Registry("method")
