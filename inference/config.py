"""Serving configuration: model names, decision threshold, reload period, rate limits.

Read from the platform settings when they carry the `serve_*` fields (`CDP_SERVE_*`), else the defaults
below, so the app runs before those settings exist.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdp.settings import Settings
    from inference.event_window import EventWindow


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
    event_max_future_seconds: float = 86_400.0  # transactions dated further ahead are refused
    event_earliest: date = date(1990, 1, 1)  # ... and those dated before this day

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServingConfig:
        """Defaults, then `settings.serve_<field>` where the settings define it, then `overrides`."""
        found = {
            f.name: getattr(settings, f"serve_{f.name}")
            for f in fields(cls)
            if getattr(settings, f"serve_{f.name}", None) is not None
        }
        return replace(cls(**found), **overrides)

    def event_window(self) -> EventWindow:
        """The accepted transaction times (`inference.event_window`)."""
        from inference.event_window import EventWindow

        return EventWindow(timedelta(seconds=self.event_max_future_seconds), self.event_earliest)
