"""Resolution of the definition's expressions: `Get` references, `Std:Join` and `Std:JsonGet`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pipelines.local.errors import DefinitionError

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_NAME_KEYS = ("OutputName", "ChannelName", "InputName", "Name", "PropertyFileName")

PropertyFileReader = Callable[[str, str], Any]


def path_tokens(path: str) -> list[str | int]:
    """`Outputs['train'].S3Output.S3Uri` -> ['Outputs', 'train', 'S3Output', 'S3Uri']; `[0]` -> 0."""
    tokens: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise DefinitionError(f"cannot parse property path {path!r} at character {position}")
        name, index, quoted, double_quoted = match.groups()
        if index is not None:
            tokens.append(int(index))
        else:
            tokens.append(name if name is not None else quoted if quoted is not None else double_quoted)
        position = match.end()
    return tokens


def walk(value: Any, tokens: list[str | int], where: str) -> Any:
    """Follow `tokens` through dicts and lists; a string key on a list selects the item with that name."""
    for token in tokens:
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                raise DefinitionError(f"{where}: no item [{token}]")
            value = value[token]
        elif isinstance(value, Mapping):
            if token not in value:
                raise DefinitionError(f"{where}: no field {token!r}")
            value = value[token]
        elif isinstance(value, list):
            matches = [item for item in value if any(item.get(k) == token for k in _NAME_KEYS)]
            if not matches:
                raise DefinitionError(f"{where}: no item named {token!r}")
            value = matches[0]
        else:
            raise DefinitionError(f"{where}: cannot take {token!r} of a {type(value).__name__}")
    return value


def step_references(value: Any) -> set[str]:
    """Names of the steps whose properties or property files `value` refers to."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        get = value.get("Get")
        if len(value) == 1 and isinstance(get, str) and get.startswith("Steps."):
            found.add(get[len("Steps.") :].split(".", 1)[0])
        for item in value.values():
            found |= step_references(item)
    elif isinstance(value, list):
        for item in value:
            found |= step_references(item)
    return found


class Resolver:
    """Turns expressions into values, given parameters, execution variables and finished steps."""

    def __init__(
        self,
        parameters: Mapping[str, Any],
        execution: Mapping[str, Any],
        read_property_file: PropertyFileReader,
        read_json_uri: Callable[[str], Any],
    ) -> None:
        self.parameters = dict(parameters)
        self.execution = dict(execution)
        self.step_properties: dict[str, dict[str, Any]] = {}
        self._read_property_file = read_property_file
        self._read_json_uri = read_json_uri

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, body),) = value.items()
            if key == "Get":
                return self.get(body)
            if key == "Std:Join":
                return self._join(body)
            if key == "Std:JsonGet":
                return self._json_get(body)
        return {key: self.resolve(item) for key, item in value.items()}

    def get(self, reference: str) -> Any:
        scope, _, rest = reference.partition(".")
        if scope == "Parameters":
            if rest not in self.parameters:
                raise DefinitionError(f"reference {reference!r}: no such pipeline parameter")
            return self.parameters[rest]
        if scope == "Execution":
            if rest not in self.execution:
                raise DefinitionError(f"reference {reference!r}: unsupported execution variable")
            return self.execution[rest]
        if scope == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.step_properties:
                raise DefinitionError(f"reference {reference!r}: step {step!r} has not run")
            return walk(self.step_properties[step], path_tokens(path), f"reference {reference!r}")
        raise DefinitionError(f"reference {reference!r}: unknown scope {scope!r}")

    def _join(self, body: Mapping[str, Any]) -> str:
        values = self.resolve(body.get("Values", []))
        return str(body.get("On", "")).join(_text(v) for v in values)

    def _json_get(self, body: Mapping[str, Any]) -> Any:
        path = self.resolve(body.get("Path"))
        if "PropertyFile" in body:
            reference = (
                body["PropertyFile"].get("Get", "") if isinstance(body["PropertyFile"], Mapping) else ""
            )
            parts = reference.split(".")
            if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
                raise DefinitionError(
                    f"JsonGet: property file reference {reference!r} is not Steps.X.PropertyFiles.Y"
                )
            document = self._read_property_file(parts[1], parts[3])
            where = f"JsonGet {parts[1]}.{parts[3]}"
        elif "S3Uri" in body:
            document = self._read_json_uri(self.resolve(body["S3Uri"]))
            where = "JsonGet on an S3 object"
        else:
            raise DefinitionError("JsonGet needs a PropertyFile or an S3Uri")
        return walk(document, path_tokens(str(path)), f"{where} path {path!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
