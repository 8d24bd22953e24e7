"""Test-wide fixtures: every test runs with its own CDP_HOME so nothing touches a real one."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Point CDP_HOME at a fresh folder and drop any cached settings."""
    from cdp.settings import get_settings

    home = tmp_path / "cdp-home"
    monkeypatch.setenv("CDP_HOME", str(home))
    monkeypatch.delenv("CDP_BACKEND", raising=False)
    monkeypatch.delenv("CDP_IDENTITY_FILE", raising=False)  # tests choose their identity explicitly
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
