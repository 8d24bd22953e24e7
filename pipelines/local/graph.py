"""The definition's steps as a graph: nested condition branches flattened, dependencies, run order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.local.errors import DefinitionError, UnsupportedStepError
from pipelines.local.expressions import step_references

SUPPORTED_TYPES = frozenset({"Processing", "Training", "Condition", "RegisterModel", "Fail"})


@dataclass
class StepNode:
    """One step. `branch` is (condition step, "if" | "else") for steps nested in a condition."""

    name: str
    type: str
    body: dict[str, Any]
    depends_on: set[str] = field(default_factory=set)
    branch: tuple[str, Literal["if", "else"]] | None = None

    @property
    def arguments(self) -> dict[str, Any]:
        return self.body.get("Arguments", {})


def _collect(steps: list[Mapping[str, Any]], nodes: dict[str, StepNode], branch=None) -> None:
    for body in steps:
        name, kind = body.get("Name"), body.get("Type")
        if not name or not kind:
            raise DefinitionError("every step needs a Name and a Type")
        if name in nodes:
            raise DefinitionError(f"step name {name!r} is used twice")
        node = StepNode(name=name, type=kind, body=dict(body), branch=branch)
        nodes[name] = node
        node.depends_on |= set(body.get("DependsOn") or [])
        if kind == "Condition":
            arguments = body.get("Arguments", {})
            node.depends_on |= step_references(arguments.get("Conditions", []))
            _collect(arguments.get("IfSteps", []), nodes, (name, "if"))
            _collect(arguments.get("ElseSteps", []), nodes, (name, "else"))
        else:
            node.depends_on |= step_references(body.get("Arguments", {}))
        if branch is not None:
            node.depends_on.add(branch[0])


def parse_steps(definition: Mapping[str, Any]) -> dict[str, StepNode]:
    """Every step of the definition (branches included), checked: known types, known references."""
    nodes: dict[str, StepNode] = {}
    _collect(list(definition.get("Steps", [])), nodes)
    unsupported = [f"{n.name} ({n.type})" for n in nodes.values() if n.type not in SUPPORTED_TYPES]
    if unsupported:
        raise UnsupportedStepError(
            "the local executor runs Processing, Training, Condition, RegisterModel and Fail steps; "
            f"unsupported: {', '.join(unsupported)}"
        )
    for node in nodes.values():
        unknown = node.depends_on - nodes.keys()
        if unknown:
            raise DefinitionError(f"step {node.name!r} depends on unknown step(s) {sorted(unknown)}")
    return nodes


def run_order(nodes: Mapping[str, StepNode]) -> list[str]:
    """Steps in dependency order (definition order among independent steps); cycles are errors."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise DefinitionError(f"dependency cycle: {' -> '.join((*trail, name))}")
        state[name] = 1
        for dependency in sorted(nodes[name].depends_on, key=list(nodes).index):
            visit(dependency, (*trail, name))
        state[name] = 2
        order.append(name)

    for name in nodes:
        visit(name, ())
    return order
