"""boto3 clients of the smoke run: the platform's client factory (`cdp.aws_clients`), in one region, at
the emulator endpoint when `CDP_AWS_ENDPOINT_URL` is set."""

from __future__ import annotations

from typing import Any

from cdp.aws_clients import aws_client
from cdp.settings import Settings


class Clients:
    """`clients("s3")`: a cached client built like every adapter's, in `region`."""

    def __init__(self, region: str, settings: Settings | None = None) -> None:
        base = settings or Settings()
        self.settings = base.model_copy(update={"aws_region": region})
        self.region = region
        self._made: dict[str, Any] = {}

    @property
    def endpoint_url(self) -> str | None:
        return self.settings.aws_endpoint_url

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = aws_client(self.settings, service)
        return self._made[service]
