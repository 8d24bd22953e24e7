"""The SageMaker inference container contract: `GET /ping` and `POST /invocations` (JSON or CSV).

The same routes serve the registry's champion in the platform's app and the model of `/opt/ml/model` in
the SageMaker container (`inference.container`): only where the model comes from differs.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from inference.auth import AUTH_ERRORS, require_scope
from inference.config import ServingConfig
from inference.holder import ModelUnavailableError
from inference.invocations import InvocationTimeoutError, invoke, read_body
from inference.loaded import LoadedModel
from inference.schemas import ErrorResponse, Invocation

ModelSource = Callable[[Request], LoadedModel | None]  # the model a request is scored with, None: none yet


def champion_source(config: ServingConfig) -> ModelSource:
    """The champion held by the app's serving state for `config.invocations_model`."""

    def source(request: Request) -> LoadedModel | None:
        return request.app.state.serving.holders[config.invocations_model].loaded

    return source


def sagemaker_router(
    config: ServingConfig,
    model_source: ModelSource | None = None,
    *,
    timeout_seconds: float | None = None,
) -> APIRouter:
    """`/ping` is always open (a health check with no data); `/invocations` needs the `invocations`
    scope unless `config.invocations_auth` is off (inside SageMaker, whose endpoint authenticates).

    `model_source` defaults to the registry's champion; with `timeout_seconds` an invocation is scored
    in a worker thread and answered 504 when it takes longer."""
    router = APIRouter(tags=["sagemaker"])
    source = model_source or champion_source(config)
    guard = [Depends(require_scope("invocations"))] if config.invocations_auth else []
    auth_errors = {s: e for s, e in AUTH_ERRORS.items() if config.invocations_auth}
    max_rows = config.max_batch * 10

    @router.get(
        "/ping",
        summary="Health check: 200 once the served model is loaded, else 503",
        response_class=Response,  # an empty body either way
        responses={200: {"description": "The served model is loaded"}, 503: {"description": "No model yet"}},
    )
    def ping(request: Request) -> Response:
        return Response(status_code=200 if source(request) is not None else 503)

    async def answer(request: Request) -> Response:
        limit = config.invocations_body_limit_bytes  # the request guard refuses larger bodies first
        body = await read_body(request.stream(), request.headers.get("content-length"), limit)
        model = source(request)
        if model is None:
            raise ModelUnavailableError(f"model {config.invocations_model!r} has no champion loaded")
        content_type = request.headers.get("content-type", "")
        accept = request.headers.get("accept", "")

        def score() -> Response:
            return invoke(
                model,
                body,
                content_type,
                accept,
                max_rows=max_rows,
                reason_codes=config.reason_codes,
                magnitude=config.feature_magnitude,
            )

        # parsing and scoring run in a worker thread: the event loop (and /ping) keeps answering
        return await anyio.to_thread.run_sync(score, abandon_on_cancel=timeout_seconds is not None)

    @router.post(
        "/invocations",
        summary="Score rows with the served model (JSON or CSV in, JSON or CSV out)",
        response_model=Invocation,
        dependencies=guard,
        responses={
            400: {"model": ErrorResponse},
            413: {"model": ErrorResponse},
            415: {"model": ErrorResponse},
            503: {"model": ErrorResponse},
            504: {"model": ErrorResponse},
            **auth_errors,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def invocations(request: Request) -> Response:
        if timeout_seconds is None:
            return await answer(request)
        try:
            with anyio.fail_after(timeout_seconds):
                return await answer(request)
        except TimeoutError:
            raise InvocationTimeoutError(f"the model did not answer within {timeout_seconds:g} s") from None

    return router
