"""The one way the AWS adapters build their boto3 clients: region, endpoint and retry/timeout policy from
the settings.

`CDP_AWS_ENDPOINT_URL` points every client at one endpoint (an AWS emulator, or a proxy); unset, each
client uses AWS's own endpoint for its service and region. SDKs that build their own clients from a session
(the SageMaker SDK) get `aws_session`, whose clients follow the same rules. Adapters import this module
inside `from_settings`, so nothing imports boto3 until an AWS adapter is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from cdp.settings import Settings

CONNECT_TIMEOUT_SECONDS = 5
# above SageMaker's 60 s invocation limit, so a slow endpoint answers rather than being retried
READ_TIMEOUT_SECONDS = 70
MAX_ATTEMPTS = 5  # botocore's "standard" retry mode: throttling and transient errors, with backoff
USER_AGENT_EXTRA = "cdp"


def client_config(overrides: Config | None = None) -> Config:
    """The botocore configuration of every client (standard retries, bounded connect and read times),
    with `overrides` winning where they set something."""
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        user_agent_extra=USER_AGENT_EXTRA,
    )
    return config if overrides is None else config.merge(overrides)


def aws_client(settings: Settings, service: str, config: Config | None = None) -> Any:
    """A boto3 client of `service` in the settings' region, at `CDP_AWS_ENDPOINT_URL` when set."""
    return boto3.client(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=client_config(config),
    )


def aws_resource(settings: Settings, service: str) -> Any:
    """A boto3 resource of `service` (e.g. DynamoDB's table interface), built like `aws_client`."""
    return boto3.resource(
        service,
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=client_config(),
    )


class PlatformSession(boto3.Session):
    """A boto3 session whose clients and resources get the platform's endpoint and configuration, whatever
    the SDK using it asks for: with an endpoint set, every call goes there (STS's regional endpoint, which
    the SageMaker SDK names explicitly, included)."""

    def __init__(self, region_name: str, endpoint_url: str | None) -> None:
        super().__init__(region_name=region_name)
        self.platform_endpoint_url = endpoint_url

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        options = dict(kwargs)
        if self.platform_endpoint_url:
            options["endpoint_url"] = self.platform_endpoint_url
        options["config"] = client_config(options.get("config"))
        return options

    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().client(*args, **self._options(kwargs))

    def resource(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return super().resource(*args, **self._options(kwargs))


def aws_session(settings: Settings) -> PlatformSession:
    """A session in the settings' region for SDKs that create their own clients (the SageMaker SDK)."""
    return PlatformSession(settings.aws_region, settings.aws_endpoint_url)
