"""The middleware of both apps (the platform's and the SageMaker container's), in their order."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from inference.access_log import AccessLogMiddleware
from inference.config import ServingConfig
from inference.request_guard import Authenticator, RequestGuard, RequestLimits
from inference.security_headers import SecurityHeadersMiddleware
from inference.slo_metrics import ApiMeter


def install_middleware(
    app: FastAPI,
    config: ServingConfig,
    authenticate: Authenticator | None = None,
    protected: Callable[[str], bool] | None = None,
    *,
    timeout_seconds: float | None = None,
    meter: ApiMeter | None = None,
) -> None:
    """Security headers (outermost), then the access log (and the API's SLO meter, when given), then the
    request guard (innermost)."""
    app.add_middleware(
        RequestGuard,
        limits=RequestLimits.from_config(config, timeout_seconds),
        authenticate=authenticate,
        protected=protected or (lambda _: False),
    )
    app.add_middleware(
        AccessLogMiddleware,
        client_address=config.client_address,
        client_address_key=config.client_address_key,
        meter=meter,
    )
    app.add_middleware(SecurityHeadersMiddleware, hsts_seconds=config.hsts_seconds)
