"""What a cached job step depended on, part by part, and the one line saying which part changed.

A step's cache digest covers its resolved arguments and the contents of its inputs as one hash, which can
say *that* something changed but not *what*. The fingerprint keeps the same things apart, named:

- `code`: the contents of the step's code (a processing step's `code` input, a training step's `code`
  and `sm_drivers` channels);
- `input:<name>`: the contents of each other input or channel (for a feature query: its result files);
- `parameter:<Name>`: the value of each pipeline parameter the step's arguments refer to;
- `hyperparameter:<name>`: the value of each hyperparameter the definition fixes (one set by a pipeline
  parameter, e.g. `max_depth` from `MaxDepth`, is already named by `parameter:MaxDepth`);
- `setting:<part>`: a hash of each part of the step's arguments as the definition writes them
  (expressions unresolved, so only an edit of the definition changes it), inputs and channels one by one;
  a training channel without its S3 URI, as in the cache digest (its contents are `input:<name>` or
  `code`, and the URI of the uploaded code carries the time the definition was built).

Parameter and hyperparameter values are configuration, never data; they are kept as JSON text so the
line can show old and new values.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

CODE = "code"
NAMED_LISTS = {"ProcessingInputs": "InputName", "InputDataConfig": "ChannelName"}
SHOWN_VALUE_CHARS = 40


def parameter_references(value: Any) -> set[str]:
    """Names of the pipeline parameters `value` (a part of a definition) refers to."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        get = value.get("Get")
        if len(value) == 1 and isinstance(get, str) and get.startswith("Parameters."):
            found.add(get[len("Parameters.") :])
        for item in value.values():
            found |= parameter_references(item)
    elif isinstance(value, list):
        for item in value:
            found |= parameter_references(item)
    return found


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _without_channel_uri(channel: Mapping[str, Any]) -> dict[str, Any]:
    """A training channel without `DataSource.S3DataSource.S3Uri` (the training digest leaves it out too)."""
    view = copy.deepcopy(dict(channel))
    view.get("DataSource", {}).get("S3DataSource", {}).pop("S3Uri", None)
    return view


def _settings(arguments: Mapping[str, Any]) -> dict[str, str]:
    """A hash per part of the unresolved arguments; inputs and channels one by one, by name."""
    parts: dict[str, str] = {}
    for key, value in arguments.items():
        if key == "HyperParameters":
            continue  # kept value by value
        name_key = NAMED_LISTS.get(key)
        if name_key and isinstance(value, list):
            for item in value:
                shown = _without_channel_uri(item) if key == "InputDataConfig" else item
                parts[f"setting:{key}[{item.get(name_key, '?')}]"] = _hash(shown)
        else:
            parts[f"setting:{key}"] = _hash(value)
    return parts


def step_fingerprint(
    unresolved_arguments: Mapping[str, Any],
    resolved_arguments: Mapping[str, Any],
    parameters: Mapping[str, Any],
    input_digests: Mapping[str, str],
) -> dict[str, str]:
    """The named parts a job step's cache entry depends on (see the module docstring).

    `input_digests` maps the step's inputs (or channels) to their content digests, the code under `code`."""
    parts = dict(_settings(unresolved_arguments))
    for name in sorted(parameter_references(unresolved_arguments)):
        if name in parameters:
            parts[f"parameter:{name}"] = json.dumps(parameters[name], default=str)
    written = unresolved_arguments.get("HyperParameters") or {}
    for name, value in (resolved_arguments.get("HyperParameters") or {}).items():
        if parameter_references(written.get(name)):
            continue  # set by a pipeline parameter: `parameter:<Name>` names it
        parts[f"hyperparameter:{name}"] = json.dumps(value, default=str)
    for name, digest in input_digests.items():
        parts[CODE if name == CODE else f"input:{name}"] = digest
    return parts


def _shown(text: str | None) -> str:
    if text is None:
        return "unset"
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."


def _describe(key: str, old: str | None, new: str | None) -> str:
    kind, _, name = key.partition(":")
    if kind in ("parameter", "hyperparameter"):
        return f"{kind} {name} changed ({_shown(old)} -> {_shown(new)})"
    if kind == CODE:
        return "code changed"
    if kind == "input":
        return f"input {name!r} changed" if old and new else f"input {name!r} {'added' if new else 'removed'}"
    return f"definition of {name} changed"


_ORDER = {"code": 0, "input": 1, "parameter": 2, "hyperparameter": 3, "setting": 4}


def changed_parts(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """What differs between two fingerprints, one phrase per part: code, inputs, parameters, then settings."""
    keys = sorted(
        (k for k in old.keys() | new.keys() if old.get(k) != new.get(k)),
        key=lambda k: (_ORDER.get(k.partition(":")[0], 5), k),
    )
    return [_describe(k, old.get(k), new.get(k)) for k in keys]


def explain_miss(cached: Mapping[str, Any] | None, fingerprint: Mapping[str, str]) -> str:
    """Why a step's digest found no cache entry, against the step's latest cached entry (`cached`)."""
    if cached is None:
        return "no cached run of this step yet"
    run = cached.get("execution_id", "?")
    old = cached.get("components")
    if not old:
        return f"the cached entry (run {run}) predates per-part tracking: its arguments or inputs changed"
    changes = changed_parts(old, fingerprint)
    if not changes:  # the digest covers resolved arguments: e.g. another step's output it reads moved
        return f"its resolved arguments changed (vs run {run})"
    return f"{', '.join(changes)} (vs run {run})"
