"""The checks every registry adapter runs before it stores a registration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdp.registry.pii_guard import document_texts, ensure_no_pii
from cdp.registry.port import (
    Lineage,
    params_as_text,
    validate_metrics,
    validate_model_name,
    validate_plots,
    validate_status,
)


@dataclass(frozen=True)
class CheckedRegistration:
    metrics: dict[str, float]
    params: dict[str, str]
    plots: dict[str, Path]


def check_registration(
    model_name: str,
    approval_status: str,
    metrics: Mapping[str, float],
    params: Mapping[str, Any],
    lineage: Lineage,
    plots: Mapping[str, str | Path] | None,
    model_card: str | None,
) -> CheckedRegistration:
    """Validated values, or an `InvalidRegistrationError` naming the field (never a value)."""
    validate_model_name(model_name)
    validate_status(approval_status)
    checked = CheckedRegistration(validate_metrics(metrics), params_as_text(params), validate_plots(plots))
    ensure_no_pii(checked.params, "param")
    ensure_no_pii({k: k for k in checked.metrics}, "metric")
    ensure_no_pii(lineage.to_dict(), "lineage")
    if model_card is not None:
        ensure_no_pii({"model_card": model_card}, "model card")
    return checked


def check_card(model_name: str, card: Mapping[str, Any], markdown: str) -> bytes:
    """The card as JSON bytes, once its name, Markdown and the JSON's keys and strings hold no personal
    data (`InvalidRegistrationError`). Floats are not scanned: a metric's 16 decimals are no card number."""
    import json

    validate_model_name(model_name)
    ensure_no_pii({"model_card": markdown}, "model card")
    ensure_no_pii({f"text {i}": t for i, t in enumerate(document_texts(card))}, "model card")
    return json.dumps(card, sort_keys=True, indent=2, default=str).encode("utf-8")
