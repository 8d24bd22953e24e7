"""Checks of a run's pipeline parameter overrides against the definition's declared parameters.

One rule for both ways a pipeline runs (the local executor and SageMaker): an unknown name fails with one
line listing the names the pipeline declares; a value that does not fit the parameter's type (Integer,
Float, Boolean) fails with one line naming the parameter. Both fail before any step runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SHOWN_VALUE_CHARS = 40
_ARTICLE = {"Integer": "an", "Float": "a", "String": "a", "Boolean": "a"}


class ParameterError(ValueError):
    """An override the definition does not declare, or whose value does not fit its type: one line."""


def declared_parameters(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The definition's parameters by name, in declaration order."""
    return {p["Name"]: p for p in definition.get("Parameters", [])}


def check_names(declared: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Raise `ParameterError` naming the overrides `declared` lacks and listing the declared names."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ParameterError(
            f"unknown pipeline parameter{plural} {', '.join(repr(n) for n in unknown)}; "
            f"the pipeline declares {', '.join(sorted(declared))}"
        )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    return int(str(value).strip())


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    number = float(value if isinstance(value, (int, float)) else str(value).strip())
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError("not true or false")
    return text == "true"


_CONVERT = {"Integer": _integer, "Float": _float, "Boolean": _boolean, "String": str}


def parameter_value(name: str, kind: str, value: Any) -> Any:
    """`value` as a `kind` parameter's value (`"3"` -> 3 for an Integer); `ParameterError` naming `name`
    when it does not fit."""
    convert = _CONVERT.get(kind, str)
    try:
        return convert(value)
    except (TypeError, ValueError):
        what = f"{_ARTICLE.get(kind, 'a')} {kind}"
        raise ParameterError(f"pipeline parameter {name!r} is {what}, got {_shown(value)}") from None


def resolve_overrides(definition: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every declared parameter's value for a run: its override (converted to its type) or its default."""
    declared = declared_parameters(definition)
    overrides = dict(overrides or {})
    check_names(declared, overrides)
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        kind = parameter.get("Type", "String")
        if name in overrides:
            values[name] = parameter_value(name, kind, overrides[name])
        elif "DefaultValue" in parameter:
            values[name] = parameter["DefaultValue"]
        else:
            raise ParameterError(f"pipeline parameter {name!r} has no default and no value was given")
    return values
