"""The container's configuration: SageMaker's environment variables, and nothing else.

SageMaker starts the image as `docker run <image> serve` with the model archive unpacked in
`/opt/ml/model`. The platform's settings (`cdp.settings`, a home folder, a registry) do not exist in the
container, so this module is the one place that reads its environment:

- `SM_MODEL_DIR`: the model folder (default `/opt/ml/model`);
- `SAGEMAKER_BIND_TO_PORT`: the port on 0.0.0.0 (default 8080);
- `SAGEMAKER_MODEL_SERVER_WORKERS`: worker processes (default: the CPUs this process may run on);
- `SAGEMAKER_MODEL_SERVER_TIMEOUT`: seconds an invocation may take before it is answered 504 (default 60);
- `CDP_MODEL_NAME`, `CDP_MODEL_VERSION`: the name and registry version put in answers (optional; the
  pipeline sets the name on the model it registers, the version is 0 when unknown).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MODEL_NAME = "model"
BIND_HOST = "0.0.0.0"  # noqa: S104 - SageMaker routes to the container's port from outside it


class ContainerConfigError(ValueError):
    """An environment variable holds a value the server cannot use (names the variable)."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity: what a container's CPU set allows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def _number(environ: Mapping[str, str], name: str, default: float, kind: type, low: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ContainerConfigError(f"{name} must be a {kind.__name__}") from None
    if value < low:
        raise ContainerConfigError(f"{name} must be at least {low:g}")
    return value


@dataclass(frozen=True)
class ContainerEnvironment:
    """Where the model is, where to listen, how many workers, how long an invocation may take."""

    model_dir: Path = DEFAULT_MODEL_DIR
    port: int = DEFAULT_PORT
    workers: int = 1
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    model_name: str = DEFAULT_MODEL_NAME
    model_version: int = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ContainerEnvironment:
        """Read SageMaker's variables (default: this process's environment)."""
        env = os.environ if environ is None else environ
        port = int(_number(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, int, 1))
        if port > 65535:
            raise ContainerConfigError("SAGEMAKER_BIND_TO_PORT must be at most 65535")
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR") or DEFAULT_MODEL_DIR),
            port=port,
            workers=int(_number(env, "SAGEMAKER_MODEL_SERVER_WORKERS", available_cpus(), int, 1)),
            timeout_seconds=float(
                _number(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_SECONDS, float, 0.001)
            ),
            model_name=env.get("CDP_MODEL_NAME") or DEFAULT_MODEL_NAME,
            model_version=int(_number(env, "CDP_MODEL_VERSION", 0, int, 0)),
        )
