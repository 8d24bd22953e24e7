"""Serving configuration: model names, decision threshold, reload period, rate limits.

Read from the platform settings when they carry the `serve_*` fields (`CDP_SERVE_*`), else the defaults
below, so the app runs before those settings exist.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdp.settings import Settings


@dataclass(frozen=True)
class ServingConfig:
    """How the inference app behaves (see each field)."""

    fraud_model: str = "cdp-fraud"
    clv_model: str = "cdp-clv"
    segmentation_model: str = "cdp-segmentation"
    invocations_model: str = "cdp-fraud"  # the model a SageMaker endpoint's /invocations serves
    fraud_threshold: float | None = None  # None: the champion's `alert_threshold` metric, else 0.5
    reason_codes: int = 3  # top contributions returned per score
    reload_seconds: float = 30.0  # how often the champion version is checked (0: never in background)
    rate_per_second: float = 50.0  # sustained requests per second per API key
    rate_burst: int = 100  # requests a key may send at once
    max_batch: int = 1000  # transactions per batch request
    invocations_auth: bool = True  # False inside a SageMaker container (the endpoint authenticates)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServingConfig:
        """Defaults, then `settings.serve_<field>` where the settings define it, then `overrides`."""
        found = {
            f.name: getattr(settings, f"serve_{f.name}")
            for f in fields(cls)
            if getattr(settings, f"serve_{f.name}", None) is not None
        }
        return replace(cls(**found), **overrides)
