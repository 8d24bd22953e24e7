"""boto3 clients of the smoke run: one region, and the emulator endpoint when one is configured."""

from __future__ import annotations

from typing import Any


class Clients:
    """`clients("s3")`: a cached boto3 client in `region`, pointed at `endpoint_url` when set."""

    def __init__(self, region: str, endpoint_url: str | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            import boto3

            self._made[service] = boto3.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url or None
            )
        return self._made[service]
