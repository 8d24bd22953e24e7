from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from cdp.settings import Settings, get_settings


def test_home_comes_from_the_environment_and_every_path_is_under_it(isolated_home):
    s = get_settings()
    assert s.home == isolated_home.resolve()
    for path in (s.data_dir, s.ground_truth_dir, s.quarantine_dir, s.lake_dir, s.state_dir, s.logs_dir):
        assert path.is_relative_to(s.home)


def test_env_vars_override_defaults(monkeypatch):
    monkeypatch.setenv("CDP_USERS", "250")
    monkeypatch.setenv("CDP_BACKEND", "aws")
    monkeypatch.setenv("CDP_START", "2000-01-01")
    s = Settings()
    assert (s.users, s.backend, s.start) == (250, "aws", date(2000, 1, 1))


def test_unknown_backend_is_refused_with_the_field_named(monkeypatch):
    monkeypatch.setenv("CDP_BACKEND", "gcp")
    with pytest.raises(ValidationError, match="backend"):
        Settings()


def test_default_scale_is_the_demo_scale():
    assert Settings().users == 100


def test_the_fraud_endpoint_name_comes_from_the_environment(monkeypatch):
    assert Settings().fraud_endpoint_name == "cdp-fraud"
    monkeypatch.setenv("CDP_FRAUD_ENDPOINT_NAME", "fraud-prod")
    assert Settings().fraud_endpoint_name == "fraud-prod"
