"""Error responses that never echo request values (validation errors drop pydantic's `input`/`ctx`)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cdp.apikeys.port import ApiKeyError
from inference.fraud_scoring import FeatureMismatchError
from inference.holder import ModelUnavailableError
from inference.invocations import InvocationTimeoutError
from inference.payloads import PayloadError
from inference.profiles import ProfileUnavailableError

MAX_REPORTED_ERRORS = 20  # a small body must not make a large answer (a batch of empty objects: 8 each)


def _detail(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": message})


def install_error_handlers(app: FastAPI) -> None:
    """Map the app's own errors to 4xx/5xx JSON responses with messages that carry no values."""

    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
             "msg": str(e.get("msg", "invalid value")), "type": str(e.get("type", "value_error"))}
            for e in error.errors()[:MAX_REPORTED_ERRORS]
        ]  # fmt: skip
        return JSONResponse(status_code=422, content={"detail": errors})

    @app.exception_handler(PayloadError)
    async def payload(_: Request, error: PayloadError) -> JSONResponse:
        return _detail(error.status_code, str(error))

    @app.exception_handler(ModelUnavailableError)
    async def unavailable(_: Request, error: ModelUnavailableError) -> JSONResponse:
        return _detail(503, str(error))

    @app.exception_handler(InvocationTimeoutError)
    async def timeout(_: Request, error: InvocationTimeoutError) -> JSONResponse:
        return _detail(504, str(error))

    @app.exception_handler(ProfileUnavailableError)
    async def no_profiles(_: Request, error: ProfileUnavailableError) -> JSONResponse:
        return _detail(503, str(error))

    @app.exception_handler(FeatureMismatchError)
    async def mismatch(_: Request, error: FeatureMismatchError) -> JSONResponse:
        return _detail(503, str(error))

    @app.exception_handler(ApiKeyError)
    async def keys(_: Request, __: ApiKeyError) -> JSONResponse:
        return _detail(503, "the API-key store is unavailable")
