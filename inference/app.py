"""The inference app: the SageMaker container contract and the public REST API in one FastAPI app.

`create_app()` wires it to the platform (registry, online store, catalog, API-key store) from the
settings; the same app runs under uvicorn (`cdp serve`), inside a SageMaker container, or in Lambda
behind API Gateway (`inference.lambda_handler`). OpenAPI at `/openapi.json`, interactive docs at `/docs`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cdp.apikeys.port import ApiKeyStore
from cdp.backends import Backends
from cdp.settings import Settings, get_settings
from inference.auth import authenticate_before_body
from inference.config import ServingConfig
from inference.errors import install_error_handlers
from inference.middleware import install_middleware
from inference.routes_public import public_router
from inference.routes_sagemaker import sagemaker_router
from inference.slo_metrics import ApiMeter
from inference.state import ServingState

API_VERSION = "1.0.0"
DESCRIPTION = """Real-time fraud scores and customer profiles of the Customer Data Platform.

Authenticate with an API key (`cdp keys create`) as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Each key holds scopes (`fraud:score`, `customers:read`, `models:read`, `models:admin`, `invocations`)
and is rate-limited (429 with `Retry-After`). Requests and responses carry tokens, never personal data.
"""


def protected_paths(config: ServingConfig) -> Callable[[str], bool]:
    """The paths authenticated before their body is read: `/v1/*`, and `/invocations` when it needs a key."""

    def protected(path: str) -> bool:
        return path.startswith("/v1/") or (config.invocations_auth and path == "/invocations")

    return protected


def create_app(
    settings: Settings | None = None,
    *,
    config: ServingConfig | None = None,
    backends: Backends | None = None,
    key_store: ApiKeyStore | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The app over the platform `settings` (default: the process settings)."""
    backends = backends or Backends(settings or get_settings())
    config = config or ServingConfig.from_settings(backends.settings)
    serving = ServingState.build(backends, config, key_store or backends.api_keys, clock=clock)
    meter = ApiMeter(lambda: backends.metrics, backends.settings.slo_api_latency_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        serving.start()
        try:
            yield
        finally:
            serving.stop()
            meter.flush()

    app = FastAPI(
        title="CDP inference API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.serving = serving
    app.state.slo_meter = meter
    install_middleware(app, config, authenticate_before_body, protected_paths(config), meter=meter)
    install_error_handlers(app)
    app.include_router(sagemaker_router(config))
    app.include_router(public_router(config))
    return app
