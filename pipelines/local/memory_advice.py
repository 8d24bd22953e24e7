"""What to change when a step runs out of memory: the pipeline parameters that shape the step's work.

A step's memory follows its input and its machine: the parameters it reads itself, and those of the steps
upstream of it (e.g. `NegativeSampleRate` of Preprocess sets how many rows Train gets), data settings first,
machine settings (instance types and counts: more training hosts each hold a shard) last. Parameters
that only feed a training step's hyperparameters are left out: they shape the model, not the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.local.graph import StepNode

_PARAMETER = "Parameters."
_MACHINE_SUFFIXES = ("InstanceType", "InstanceCount")
HYPERPARAMETERS = "HyperParameters"


def is_machine_setting(name: str) -> bool:
    """Whether a parameter picks SageMaker machines (a type or a count) rather than the step's data."""
    return name.endswith(_MACHINE_SUFFIXES)


def parameter_references(value: Any) -> set[str]:
    """Names of the pipeline parameters `value` refers to (`{"Get": "Parameters.X"}`)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        get = value.get("Get")
        if len(value) == 1 and isinstance(get, str) and get.startswith(_PARAMETER):
            found.add(get[len(_PARAMETER) :])
        for item in value.values():
            found |= parameter_references(item)
    elif isinstance(value, list):
        for item in value:
            found |= parameter_references(item)
    return found


def memory_settings(nodes: Mapping[str, StepNode], name: str) -> list[str]:
    """The parameters read by step `name` and the job steps upstream of it: data settings first."""
    seen: set[str] = set()
    pending = [name]
    found: set[str] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        node = nodes[current]
        if node.type in ("Processing", "Training"):
            # model hyperparameters (MaxDepth, Eta, ...) shape the model, not the data the step holds
            found |= parameter_references({k: v for k, v in node.arguments.items() if k != HYPERPARAMETERS})
        pending.extend(node.depends_on)
    return sorted(found, key=lambda p: (is_machine_setting(p), p))


def out_of_memory_advice(settings: list[str]) -> str:
    """The "set ..." part of the out-of-memory message."""
    data = " or ".join(s for s in settings if not is_machine_setting(s))
    machines = " or ".join(s for s in settings if is_machine_setting(s))
    if data and machines:
        return (
            f"set {data} (pipeline parameter) to give the step less data, or a larger {machines} on SageMaker"
        )
    if data:
        return f"set {data} (pipeline parameter) to give the step less data"
    if machines:
        return f"set a larger {machines} on SageMaker, or free memory on this machine"
    return "give the step less data or free memory on this machine"
