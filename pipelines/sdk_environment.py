"""Process settings the SageMaker SDK needs before it is imported (region, telemetry opt-out, role check)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SDK_CONFIG = Path(__file__).with_name("sagemaker_config.yaml")


def prepare_sdk_environment(region: str, *, validate_role: bool = False) -> None:
    """Set what the SDK reads from the environment; values already set by the user are kept.

    The SDK creates a boto3 client at import time (a region is required), sends telemetry unless its
    config file opts out, and checks the role against IAM unless `SAGEMAKER_VALIDATE_ROLE=false`.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("SAGEMAKER_USER_CONFIG_OVERRIDE", str(SDK_CONFIG))
    if not validate_role:
        os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


@contextmanager
def quiet_sdk_logging() -> Iterator[None]:
    """Silence log records up to WARNING while the SDK builds a definition offline.

    Building offline makes the SDK chatter (role checks skipped, fields popped, default instance types,
    image URIs) at DEBUG to WARNING, and importing parts of it configures the root logger. None of it is
    actionable here; errors still get through.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Building a definition in a PipelineSession is the point here, not a mistake to warn about.
            warnings.filterwarnings("ignore", "Running within a PipelineSession", UserWarning)
            yield
    finally:
        logging.disable(previous)
