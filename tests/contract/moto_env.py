"""Fake AWS credentials and region for the moto-backed side of the contract suites (nothing leaves the
process: moto answers every call in memory)."""

from __future__ import annotations

import pytest

REGION = "eu-west-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def use_fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point boto3 at throw-away credentials in `REGION` for the rest of the test."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
