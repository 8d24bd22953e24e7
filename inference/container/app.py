"""The container's app: the platform's SageMaker routes over one model loaded from a folder.

The routes, payload parsing, scoring and error answers are the in-process app's (`inference.routes_sagemaker`,
`inference.invocations`); only the model source differs: a model held in memory instead of the registry's
champion. `/invocations` needs no API key here: the SageMaker endpoint authenticates its callers (IAM).
"""

from __future__ import annotations

import logging
import sys

from fastapi import FastAPI, Request

from inference.config import ServingConfig
from inference.container.environment import ContainerEnvironment
from inference.errors import install_error_handlers
from inference.loaded import LoadedModel, load_folder
from inference.middleware import install_middleware
from inference.routes_sagemaker import sagemaker_router

ACCESS_LOGGER = "cdp.inference.access"


def create_container_app(
    model: LoadedModel, *, timeout_seconds: float | None = None, config: ServingConfig | None = None
) -> FastAPI:
    """`/ping` (200: the model is held) and `/invocations` scoring `model`, each invocation cut at
    `timeout_seconds` (504)."""
    config = config or ServingConfig(invocations_auth=False, invocations_model=model.name, reload_seconds=0)

    def held(_: Request) -> LoadedModel:
        return model

    app = FastAPI(title="CDP inference container", docs_url=None, redoc_url=None, openapi_url=None)
    # the route's own timeout answers first (504); the guard's, a second later, is the backstop
    guard_timeout = None if timeout_seconds is None else timeout_seconds + 1.0
    install_middleware(app, config, timeout_seconds=guard_timeout)
    install_error_handlers(app)
    app.include_router(sagemaker_router(config, held, timeout_seconds=timeout_seconds))
    return app


def log_access_to_stdout() -> None:
    """One JSON line per request on stdout (CloudWatch Logs collects a container's output)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(getattr(h, "name", "") == "container-stdout" for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.set_name("container-stdout")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def load_model(environment: ContainerEnvironment) -> LoadedModel:
    """The model of `environment.model_dir` (an unpacked training `model.tar.gz`)."""
    return load_folder(environment.model_dir, environment.model_name, environment.model_version)


def app_from_environment() -> FastAPI:
    """The app as SageMaker's environment describes it (uvicorn's factory in every worker process)."""
    environment = ContainerEnvironment.from_environ()
    log_access_to_stdout()
    return create_container_app(load_model(environment), timeout_seconds=environment.timeout_seconds)
