"""A method's options: a dataclass whose field types are checked against the config.

The dataclass is the one home of each option's default and type; a config value of the
wrong type stops the workflow at start with the option's name, not hours later inside a
job (``"alpha_lr": "fast"`` would otherwise reach Adam)::

    @dataclass(frozen=True)
    class MyOptions:
        mu: float = 0.01
        mode: Literal["a", "b"] = "a"
"""

from __future__ import annotations

import types
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from dfnas.errors import ConfigError


def parse_options(options_cls: type, values: dict[str, Any]) -> Any:
    """``options_cls`` built from a config's ``options``; unknown names and values of the
    wrong type raise ``ConfigError`` naming the option."""
    known = {f.name for f in fields(options_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"options.{unknown[0]}: unknown option (known: {', '.join(sorted(known)) or 'none'})"
        )
    hints = get_type_hints(options_cls)
    for name, value in values.items():
        if not matches(value, hints[name]):
            raise ConfigError(f"options.{name}: expected {describe(hints[name])}, got {value!r}")
    try:
        return options_cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"options: {exc}") from None


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value (YAML/JSON: no tuples, ints where floats are meant) fits."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return not args or all(matches(v, args[0]) for v in value)
    raise TypeError(f"option type {hint!r} is not one a config can hold")


def describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if hint is type(None):
        return "null"
    if origin in (tuple, list):
        return f"a list of {len(args)} values" if origin is tuple else "a list"
    if origin is dict:
        return "a mapping"
    return {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "a mapping",
    }.get(hint, getattr(hint, "__name__", str(hint)))
