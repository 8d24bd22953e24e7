"""The same app in AWS Lambda behind API Gateway (HTTP API, payload v2), through Mangum.

Champions are loaded once per execution environment (at cold start), not per invocation: Mangum's
lifespan is off and the serving state is started when the handler is built. The reload thread runs
while the environment is thawed; `POST /v1/models/reload` forces a check.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from mangum import Mangum

_handler: Mangum | None = None


def build_handler(app: FastAPI | None = None) -> Mangum:
    """A Mangum handler over `app` (default: `create_app()` from the settings), champions loaded."""
    if app is None:
        from inference.app import create_app

        app = create_app()
    app.state.serving.start()
    return Mangum(app, lifespan="off", api_gateway_base_path="/")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (`inference.lambda_handler.handler`)."""
    global _handler
    if _handler is None:
        _handler = build_handler()
    return _handler(event, context)
