"""What `cdp models list|show|approve|reject|retire|history|rollback` do, as plain functions over a
`ModelRegistry`.

The CLI parses arguments, builds the registry (`Backends.model_registry`) and prints what these
return; nothing here prints or exits.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.table import Table

from cdp.registry.port import (
    CHAMPION,
    ChampionEvent,
    ModelRegistry,
    ModelVersion,
    ModelVersionNotFoundError,
)


def list_models(registry: ModelRegistry, model_name: str | None = None) -> list[ModelVersion]:
    """`cdp models list [MODEL]`: every version (of one model, or of all), by model then version."""
    return registry.list(model_name)


def models_table(versions: list[ModelVersion]) -> Table:
    """The `cdp models list` table: model, version, status, champion mark, creation time, metrics.
    A version that cannot be read shows `<status> (unreadable)` and the problem in place of its metrics."""
    table = Table("model", "version", "status", "champion", "created", "metrics")
    for v in versions:
        metrics = v.problem or ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items()))
        table.add_row(
            v.model_name, str(v.version), f"{v.status} (unreadable)" if v.problem else v.status,
            "*" if v.is_champion else "", v.created_at.strftime("%Y-%m-%d %H:%M"), metrics,
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
    """`cdp models show MODEL [VERSION|champion]`: one version as a JSON-ready dict, with its governance
    evidence (the gate's verdict, the shadow comparison, who approved the switch)."""
    if version == CHAMPION:
        chosen = registry.champion(model_name)
        if chosen is None:
            raise ModelVersionNotFoundError(f"model {model_name!r} has no champion")
    else:
        chosen = registry.get(model_name, int(version))
    return {**chosen.to_dict(), "evidence": registry.evidence(model_name, chosen.version)}


def approve_model(
    registry: ModelRegistry,
    model_name: str,
    version: int,
    actor: str,
    reason: str,
    role: str = "model-approver",
) -> ModelVersion:
    """`cdp models approve MODEL VERSION --reason ...`: Approved + champion, audited as `model-approve`;
    the approver is named in the version's model card."""
    from cdp.registry.card_store import store_approval

    approved = registry.approve(model_name, version, actor, reason, role=role)
    store_approval(registry, model_name, version, actor)
    return approved


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


def retire_model(
    registry: ModelRegistry,
    model_name: str,
    version: int,
    actor: str,
    reason: str,
    role: str = "model-approver",
) -> ModelVersion:
    """`cdp models retire MODEL VERSION --reason ...`: Retired for good (never the champion, never by its
    registrant), audited `model-retire`; the retirement is written into the version's model card."""
    from cdp.registry.card_store import store_retirement

    retired = registry.retire(model_name, version, actor, reason, role=role)
    store_retirement(registry, model_name, version, actor, reason)
    return retired


def model_history(registry: ModelRegistry, model_name: str) -> list[ChampionEvent]:
    """`cdp models history MODEL`: who made which version champion (or stopped it), when and why."""
    return registry.history(model_name)


def history_table(events: list[ChampionEvent]) -> Table:
    """The `cdp models history` table, oldest first."""
    table = Table("when (UTC)", "version", "change", "action", "by", "why")
    for e in events:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"), str(e.version), e.change, e.action, e.actor, e.reason
        )
    return table


def parse_moment(text: str) -> datetime | date:
    """A `--at` argument: `YYYY-MM-DD` (a day) or an ISO date-time (naive = UTC)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("--at must be YYYY-MM-DD or an ISO date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def champion_at(registry: ModelRegistry, model_name: str, at: datetime | date) -> dict[str, Any]:
    """`cdp models history MODEL --at D`: the champion at a moment, or every version that served on a
    day (UTC) in order: the one serving at its start, then each that became champion during it."""
    if isinstance(at, datetime):
        return {"model": model_name, "at": at.isoformat(), "champion": registry.champion_at(model_name, at)}
    start = datetime.combine(at, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    served: list[int] = []
    first = registry.champion_at(model_name, start)
    if first is not None:
        served.append(first)
    for event in registry.history(model_name):
        if (
            start < event.at < end
            and event.change == "became"
            and (not served or served[-1] != event.version)
        ):
            served.append(event.version)
    return {"model": model_name, "day": at.isoformat(), "served": served}


def rollback_model(
    registry: ModelRegistry, model_name: str, actor: str, reason: str, role: str = "model-approver"
) -> ModelVersion:
    """`cdp models rollback MODEL --reason ...`: the previous champion approved again, audited
    `model-rollback`; serving picks it up on its next champion poll."""
    return registry.rollback(model_name, actor, reason, role=role)
