"""Reading and updating a version's model card through the registry port (`cdp models card`, approvals)."""

from __future__ import annotations

from datetime import datetime

from cdp.registry.model_card import ModelCard, record_approval, record_retirement, render_markdown
from cdp.registry.port import CHAMPION, ModelRegistry, ModelVersionNotFoundError


def load(registry: ModelRegistry, model_name: str, version: int | str) -> ModelCard:
    """The newest card of a version (or of the champion); `ModelVersionNotFoundError` when there is none."""
    if version == CHAMPION:
        champion = registry.champion(model_name)
        if champion is None:
            raise ModelVersionNotFoundError(f"model {model_name!r} has no champion")
        version = champion.version
    stored = registry.load_card(model_name, int(version))
    if stored is None:
        raise ModelVersionNotFoundError(f"{model_name} v{version} has no model card")
    return ModelCard.from_dict(stored)


def save(registry: ModelRegistry, card: ModelCard) -> str:
    """Store a new revision of the card (JSON + Markdown); returns the Markdown's URI."""
    return registry.save_card(card.model_name, card.version, card.to_dict(), render_markdown(card))


def store_approval(
    registry: ModelRegistry, model_name: str, version: int, approver: str, at: datetime | None = None
) -> ModelCard | None:
    """Name `approver` in the version's card (a new revision); None when the version has no card.
    Called once the registry has accepted the approval (which already refused the registrant)."""
    stored = registry.load_card(model_name, version)
    if stored is None:
        return None
    card = record_approval(ModelCard.from_dict(stored), approver, at)
    save(registry, card)
    return card


def store_retirement(
    registry: ModelRegistry, model_name: str, version: int, by: str, reason: str
) -> ModelCard | None:
    """Mark the version's card retired (a new revision); None when the version has no card. Called once
    the registry has retired the version."""
    stored = registry.load_card(model_name, version)
    if stored is None:
        return None
    card = record_retirement(ModelCard.from_dict(stored), by, reason)
    save(registry, card)
    return card
