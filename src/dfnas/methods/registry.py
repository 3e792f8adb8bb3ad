"""The method registry: name -> ``MethodSpec`` (the declaration and its implementation)."""

from dfnas.methods.spec import METHODS, MethodRegistry, MethodSpec

__all__ = ["METHODS", "MethodRegistry", "MethodSpec"]
