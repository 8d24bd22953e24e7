"""What `cdp models list|show|approve|reject` do, as plain functions over a `ModelRegistry`.

The CLI parses arguments, builds the registry (`Backends.model_registry`) and prints what these
return; nothing here prints or exits.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from cdp.registry.port import CHAMPION, ModelRegistry, ModelVersion, ModelVersionNotFoundError


def list_models(registry: ModelRegistry, model_name: str | None = None) -> list[ModelVersion]:
    """`cdp models list [MODEL]`: every version (of one model, or of all), by model then version."""
    return registry.list(model_name)


def models_table(versions: list[ModelVersion]) -> Table:
    """The `cdp models list` table: model, version, status, champion mark, creation time, metrics."""
    table = Table("model", "version", "status", "champion", "created", "metrics")
    for v in versions:
        metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items()))
        table.add_row(
            v.model_name, str(v.version), v.status, "*" if v.is_champion else "",
            v.created_at.strftime("%Y-%m-%d %H:%M"), metrics,
        )  # fmt: skip
    return table


def parse_version(text: str) -> int | str:
    """A CLI version argument: a positive number or `champion`."""
    if text == CHAMPION:
        return CHAMPION
    if not text.isdigit() or int(text) < 1:
        raise ValueError("version must be a positive number or 'champion'")
    return int(text)


def show_model(registry: ModelRegistry, model_name: str, version: int | str = CHAMPION) -> dict[str, Any]:
    """`cdp models show MODEL [VERSION|champion]`: one version as a JSON-ready dict."""
    if version == CHAMPION:
        chosen = registry.champion(model_name)
        if chosen is None:
            raise ModelVersionNotFoundError(f"model {model_name!r} has no champion")
        return chosen.to_dict()
    return registry.get(model_name, int(version)).to_dict()


def approve_model(
    registry: ModelRegistry,
    model_name: str,
    version: int,
    actor: str,
    reason: str,
    role: str = "model-approver",
) -> ModelVersion:
    """`cdp models approve MODEL VERSION --reason ...`: Approved + champion, audited as `model-approve`."""
    return registry.approve(model_name, version, actor, reason, role=role)


def reject_model(
    registry: ModelRegistry,
    model_name: str,
    version: int,
    actor: str,
    reason: str,
    role: str = "model-approver",
) -> ModelVersion:
    """`cdp models reject MODEL VERSION --reason ...`: Rejected (drops champion), audited `model-reject`."""
    return registry.reject(model_name, version, actor, reason, role=role)
