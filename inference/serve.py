"""`cdp serve`: run the inference app with uvicorn; API calls are logged as JSON lines to a file.

uvicorn bounds what reaches the app (`uvicorn_limits`): the bytes of a request head it buffers, the open
connections per worker (503 beyond), and how long an idle keep-alive connection stays open; the app's
request guard bounds the rest (`inference.request_guard`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cdp.settings import Settings, get_settings
from cdp.startup_objects import freeze_startup_objects
from inference.config import ServingConfig

ACCESS_LOG_FILE = "api-access.log"


def configure_access_log(logs_dir: Path) -> Path:
    """Send the access log (`cdp.inference.access`) to `<logs_dir>/api-access.log`; returns its path."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / ACCESS_LOG_FILE
    logger = logging.getLogger("cdp.inference.access")
    if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path for h in logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return path


def uvicorn_limits(config: ServingConfig) -> dict[str, Any]:
    """uvicorn's own bounds for `config`. Its HTTP parser refuses a head larger than twice the guard's
    header limit (plus the request line) by itself; a smaller excess reaches the guard, which answers 431."""
    return {
        "h11_max_incomplete_event_size": 2 * config.max_header_bytes + 8192,
        "limit_concurrency": config.max_connections,
        "timeout_keep_alive": config.keep_alive_seconds,
    }


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    settings: Settings | None = None,
    *,
    reload_seconds: float | None = None,
    sagemaker: bool = False,
) -> None:
    """Run the app until interrupted (8080 is SageMaker's port). `sagemaker=True` opens `/invocations`
    without an API key, for a SageMaker container whose endpoint authenticates callers."""
    import uvicorn

    from inference.app import create_app

    settings = settings or get_settings()
    overrides: dict = {"invocations_auth": not sagemaker}
    if reload_seconds is not None:
        overrides["reload_seconds"] = reload_seconds
    config = ServingConfig.from_settings(settings, **overrides)
    configure_access_log(settings.logs_dir)
    app = create_app(settings, config=config)
    freeze_startup_objects()
    uvicorn.run(
        app, host=host, port=port, workers=1, access_log=False, log_level="info", **uvicorn_limits(config)
    )
