"""Evaluation of Condition steps' conditions (the definition's `Conditions` list: all must hold)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.local.errors import DefinitionError
from pipelines.local.expressions import Resolver

_COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers (SageMaker passes property-file values and parameters as they are)."""
    if isinstance(left, (int, float)) != isinstance(right, (int, float)):
        try:
            return float(left), float(right)
        except (TypeError, ValueError):
            return left, right
    return left, right


def evaluate(condition: Mapping[str, Any], resolver: Resolver, where: str) -> bool:
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = _comparable(
            resolver.resolve(condition["LeftValue"]), resolver.resolve(condition["RightValue"])
        )
        try:
            return bool(_COMPARISONS[kind](left, right))
        except TypeError:
            raise DefinitionError(
                f"{where}: {kind} cannot compare a {type(left).__name__} with a {type(right).__name__}"
            ) from None
    if kind == "In":
        value = resolver.resolve(condition["QueryValue"])
        return value in resolver.resolve(condition["Values"])
    if kind == "Not":
        return not evaluate(condition["Condition"], resolver, where)
    if kind == "Or":
        return any(evaluate(c, resolver, where) for c in condition["Conditions"])
    raise DefinitionError(f"{where}: unsupported condition type {kind!r}")


def all_hold(conditions: list[Mapping[str, Any]], resolver: Resolver, where: str) -> bool:
    return all(evaluate(c, resolver, where) for c in conditions)
