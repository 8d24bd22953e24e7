"""The SageMaker inference container contract: `GET /ping` and `POST /invocations` (JSON or CSV)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from cdp.registry.scoring import MissingFeaturesError
from inference.auth import AUTH_ERRORS, require_scope
from inference.config import ServingConfig
from inference.fraud_scoring import FeatureMismatchError
from inference.payloads import PayloadError, parse_payload
from inference.predict import predictions
from inference.schemas import ErrorResponse, Invocation

MAX_BODY_BYTES = 6 << 20  # SageMaker's own request limit for real-time endpoints


def sagemaker_router(config: ServingConfig) -> APIRouter:
    """`/ping` is always open (a health check with no data); `/invocations` needs the `invocations`
    scope unless `config.invocations_auth` is off (inside SageMaker, whose endpoint authenticates)."""
    router = APIRouter(tags=["sagemaker"])
    guard = [Depends(require_scope("invocations"))] if config.invocations_auth else []
    auth_errors = {s: e for s, e in AUTH_ERRORS.items() if config.invocations_auth}

    @router.get(
        "/ping",
        summary="Health check: 200 once the served model is loaded, else 503",
        response_class=Response,  # an empty body either way
        responses={200: {"description": "The served model is loaded"}, 503: {"description": "No model yet"}},
    )
    def ping(request: Request) -> Response:
        holder = request.app.state.serving.holders[config.invocations_model]
        return Response(status_code=200 if holder.loaded is not None else 503)

    @router.post(
        "/invocations",
        summary="Score rows with the served champion (JSON or CSV in, JSON or CSV out)",
        response_model=Invocation,
        dependencies=guard,
        responses={400: {"model": ErrorResponse}, 503: {"model": ErrorResponse}, **auth_errors},
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
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise PayloadError("the body is larger than 6 MB")
        model = request.app.state.serving.holders[config.invocations_model].current
        frame = parse_payload(body, request.headers.get("content-type", ""), model.features)
        if len(frame) > config.max_batch * 10:
            raise PayloadError(f"at most {config.max_batch * 10} rows per invocation")
        try:
            values = predictions(model, frame)
        except (FeatureMismatchError, MissingFeaturesError) as error:
            raise PayloadError(str(error)) from None
        if "text/csv" in request.headers.get("accept", ""):
            lines = (",".join(str(x) for x in v) if isinstance(v, list) else str(v) for v in values)
            return PlainTextResponse("\n".join(lines) + "\n", media_type="text/csv")
        return JSONResponse({"predictions": values, "model": model.name, "model_version": model.version})

    return router
