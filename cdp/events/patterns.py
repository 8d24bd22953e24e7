"""EventBridge event patterns: validate a pattern and match it against an event envelope.

Supported (the features the platform's rules use, checked against EventBridge's own matcher in tests):
- nested objects: `{"detail": {"state": {"value": ["ALARM"]}}}` walks into the event;
- a list of matchers per leaf: the leaf matches when any matcher does; an array in the event matches when
  any of its elements does;
- exact values: strings, numbers (compared as numbers) and `null`;
- `{"prefix": "s"}`, `{"suffix": "s"}`, `{"equals-ignore-case": "s"}`;
- `{"anything-but": v | [v, ...] | {"prefix": "s"}}` (never matches a missing field);
- `{"numeric": [">", 0, "<=", 5]}` (one or two comparisons; only numbers match);
- `{"exists": true | false}` (on leaf fields).
Anything else is rejected by `validate_pattern` with a `PatternError`, so a rule never silently matches
differently on the local bus and on EventBridge.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()
_NUMERIC_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case")


class PatternError(ValueError):
    """The event pattern is malformed or uses a feature this matcher does not support."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_matcher(path: str, matcher: Any) -> None:
    if matcher is None or isinstance(matcher, str) or _is_number(matcher):
        return
    if not isinstance(matcher, Mapping) or len(matcher) != 1:
        raise PatternError(f"{path}: a matcher is a string, number, null or a one-key object")
    ((name, value),) = matcher.items()
    if name in _STRING_OPERATORS:
        if not isinstance(value, str):
            raise PatternError(f"{path}: {name} takes a string")
    elif name == "exists":
        if not isinstance(value, bool):
            raise PatternError(f"{path}: exists takes true or false")
    elif name == "numeric":
        if not isinstance(value, list) or len(value) not in (2, 4):
            raise PatternError(f"{path}: numeric takes one or two (operator, number) pairs")
        for op, bound in zip(value[::2], value[1::2], strict=True):
            if op not in _NUMERIC_OPERATORS or not _is_number(bound):
                raise PatternError(f"{path}: numeric needs an operator of < <= = >= > and a number")
    elif name == "anything-but":
        if isinstance(value, Mapping):
            if set(value) != {"prefix"} or not isinstance(value["prefix"], str):
                raise PatternError(f"{path}: anything-but takes a value, a list or a prefix object")
        else:
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) or _is_number(v) for v in values):
                raise PatternError(f"{path}: anything-but values must be strings or numbers")
    else:
        raise PatternError(f"{path}: unsupported matcher {name!r}")


def validate_pattern(pattern: Mapping[str, Any], path: str = "") -> None:
    """Raise `PatternError` unless `pattern` is a well-formed pattern of the supported features."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise PatternError(f"{path or 'pattern'}: must be a non-empty object")
    for key, node in pattern.items():
        where = f"{path}.{key}" if path else key
        if isinstance(node, Mapping):
            validate_pattern(node, where)
        elif isinstance(node, list):
            if not node:
                raise PatternError(f"{where}: a list of matchers must not be empty")
            for matcher in node:
                _validate_matcher(where, matcher)
        else:
            raise PatternError(f"{where}: must be an object or a list of matchers")


def _match_scalar(matcher: Any, value: Any) -> bool:
    if matcher is None:
        return value is None
    if isinstance(matcher, str):
        return isinstance(value, str) and value == matcher
    if _is_number(matcher):
        return _is_number(value) and float(value) == float(matcher)
    ((name, arg),) = matcher.items()
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == arg.lower()
    if name == "numeric":
        return _is_number(value) and all(
            _NUMERIC_OPERATORS[op](value, bound) for op, bound in zip(arg[::2], arg[1::2], strict=True)
        )
    if name == "anything-but":
        if isinstance(arg, Mapping):
            return isinstance(value, str) and not value.startswith(arg["prefix"])
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_scalar(v, value) for v in excluded)
    raise PatternError(f"unsupported matcher {name!r}")


def _match_leaf(matchers: list[Any], value: Any) -> bool:
    for matcher in matchers:
        if isinstance(matcher, Mapping) and "exists" in matcher:
            present = value is not _MISSING and not isinstance(value, Mapping)
            if present == matcher["exists"]:
                return True
            continue
        if value is _MISSING or isinstance(value, Mapping):
            continue
        candidates = value if isinstance(value, list) else [value]
        if any(_match_scalar(matcher, candidate) for candidate in candidates):
            return True
    return False


def _match_node(pattern: Mapping[str, Any], event: Any) -> bool:
    for key, node in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(node, Mapping):
            if not _match_node(node, value if value is not _MISSING else {}):
                return False
        elif not _match_leaf(node, value):
            return False
    return True


def matches(pattern: Mapping[str, Any] | str, event: Mapping[str, Any]) -> bool:
    """True when the event envelope (`source`, `detail-type`, `detail`, ...) matches the pattern."""
    parsed = json.loads(pattern) if isinstance(pattern, str) else pattern
    validate_pattern(parsed)
    return _match_node(parsed, event)
