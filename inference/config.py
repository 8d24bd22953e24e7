"""Serving configuration: model names, decision threshold, reload period, rate limits, request bounds.

Read from the platform settings when they carry the `serve_*` fields (`CDP_SERVE_*`), else the defaults
below, so the app runs before those settings exist.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

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
    # -- request bounds (inference/request_guard.py): 413 / 431 / 503 / 504 beyond them -----------------
    body_limit_bytes: int = 64 << 10  # any route not listed below (GET routes carry no body)
    score_body_limit_bytes: int = 256 << 10  # POST /v1/fraud/score
    batch_body_limit_bytes: int = 2 << 20  # POST /v1/fraud/score:batch (1,000 transactions: ~0.5 MB)
    invocations_body_limit_bytes: int = 6 << 20  # POST /invocations (SageMaker's own request limit)
    max_headers: int = 100  # header lines per request
    max_header_bytes: int = 16 << 10  # names and values of all headers together
    request_timeout_seconds: float = 30.0  # a request still running then is answered 504 and cancelled
    max_concurrency: int = 256  # requests in flight per worker (`/ping` not counted); 503 beyond
    max_connections: int = 1024  # open connections per worker (uvicorn's limit_concurrency)
    keep_alive_seconds: float = 5.0  # idle keep-alive connections are closed after this
    # -- strict inputs ----------------------------------------------------------------------------------
    feature_magnitude: float = 1e15  # /invocations: |value| bound when the model's spec has no ranges
    # -- response headers and access log ----------------------------------------------------------------
    hsts_seconds: int = 0  # Strict-Transport-Security max-age when served behind TLS (0: not sent)
    client_address: Literal["plain", "hashed"] = "hashed"  # how the access log records the client
    client_address_key: str | None = None  # HMAC key of hashed addresses (None: random per process)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServingConfig:
        """Defaults, then `settings.serve_<field>` where the settings define it, then `overrides`."""
        found = {
            f.name: _plain(getattr(settings, f"serve_{f.name}"))
            for f in fields(cls)
            if getattr(settings, f"serve_{f.name}", None) is not None
        }
        return replace(cls(**found), **overrides)

    def event_window(self) -> EventWindow:
        """The accepted transaction times (`inference.event_window`)."""
        from inference.event_window import EventWindow

        return EventWindow(timedelta(seconds=self.event_max_future_seconds), self.event_earliest)


def _plain(value: Any) -> Any:
    """A secret setting's value (pydantic `SecretStr`), any other value as it is."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value
