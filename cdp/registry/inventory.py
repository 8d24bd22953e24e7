"""The model inventory, as `cdp models inventory` shows it (no printing here).

The inventory lists every version of every registered model: status, champion mark, owner, last
validation (newest evidence in its card: the pipeline's evaluation or the promotion gate's judgement)
and next review date (last validation + `CDP_MODEL_REVIEW_DAYS`); a retired version is listed as such
and is never due for review. A version without a card is listed
with "no card": it was registered before cards existed, or outside the platform's registration paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from cdp.registry.model_card import ModelCard
from cdp.registry.port import RETIRED, ModelRegistry


@dataclass(frozen=True)
class InventoryEntry:
    """One model version in the inventory."""

    model_name: str
    version: int
    status: str
    champion: bool
    owner: str | None
    approver: str | None
    last_validation: str | None  # ISO date-time of the newest validation
    last_validated_by: str | None
    next_review: str | None  # ISO date
    overdue: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def inventory(registry: ModelRegistry, review_days: int, now: datetime | None = None) -> list[InventoryEntry]:
    """Every version of every model, by model then version."""
    now = now or datetime.now(UTC)
    entries = []
    for version in registry.list():
        stored = None if version.problem else registry.load_card(version.model_name, version.version)
        card = ModelCard.from_dict(stored) if stored else None
        last = card.last_validation if card else None
        retired = version.status == RETIRED
        review = card.next_review(review_days) if card and not retired else None
        entries.append(
            InventoryEntry(
                model_name=version.model_name,
                version=version.version,
                status=version.status,
                champion=version.is_champion,
                owner=card.owner if card else None,
                approver=card.approver if card else None,
                last_validation=last.at if last else None,
                last_validated_by=last.by if last else None,
                next_review=review.date().isoformat() if review else None,
                overdue=review is not None and review < now,
            )
        )
    return entries


def inventory_table(entries: list[InventoryEntry]) -> Table:
    """The `cdp models inventory` table."""
    table = Table("model", "version", "status", "champion", "owner", "approver", "last validation",
                  "next review", title="model inventory")  # fmt: skip
    for e in entries:
        review = e.next_review or ("retired" if e.status == RETIRED else "not validated")
        last = f"{e.last_validation[:10]} ({e.last_validated_by})" if e.last_validation else ""
        table.add_row(
            e.model_name, str(e.version), e.status, "*" if e.champion else "", e.owner or "no card",
            e.approver or "", last, f"[red]{review} (overdue)[/red]" if e.overdue else review,
        )  # fmt: skip
    return table
