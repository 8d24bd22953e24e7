"""`cdp models list|show|approve|reject` functions and the adapter choice from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from rich.console import Console

from cdp.backends import Backends
from cdp.objectstore.s3 import S3ObjectStore
from cdp.registry import APPROVED, REJECTED, ModelVersionNotFoundError
from cdp.registry.commands import (
    approve_model,
    list_models,
    models_table,
    parse_version,
    reject_model,
    show_model,
)
from cdp.registry.mlflow_registry import MlflowModelRegistry
from cdp.registry.sagemaker_registry import SageMakerModelRegistry
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.settings import Settings
from tests.contract.test_registry_contract import AWS_ENV, BUCKET, REGION, register, write_tiny_model


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SageMakerModelRegistry]:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        reg = SageMakerModelRegistry(
            boto3.client("sagemaker", region_name=REGION), S3ObjectStore(s3),
            SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate()), BUCKET,
        )  # fmt: skip
        model_dir = write_tiny_model(tmp_path / "model")
        register(reg, "fraud", model_dir)
        register(reg, "fraud", model_dir)
        register(reg, "clv", model_dir)
        yield reg


def test_list_and_table(registry: SageMakerModelRegistry) -> None:
    approve_model(registry, "fraud", 2, "alice", "ok")
    assert [(v.model_name, v.version) for v in list_models(registry)] == [
        ("clv", 1),
        ("fraud", 1),
        ("fraud", 2),
    ]
    assert [v.version for v in list_models(registry, "fraud")] == [1, 2]
    console = Console(width=200, record=True)
    console.print(models_table(list_models(registry, "fraud")))
    lines = [line for line in console.export_text().splitlines() if "fraud" in line]
    assert len(lines) == 2 and "*" in lines[1] and "*" not in lines[0] and "pr_auc=0.41" in lines[0]


def test_show_approve_reject(registry: SageMakerModelRegistry) -> None:
    with pytest.raises(ModelVersionNotFoundError):
        show_model(registry, "fraud")  # no champion yet
    assert approve_model(registry, "fraud", 1, "alice", "ok").status == APPROVED
    shown = show_model(registry, "fraud", parse_version("champion"))
    assert (shown["version"], shown["champion"], shown["status"]) == (1, True, APPROVED)
    assert shown["lineage"]["pipeline_run_id"] == "run-1" and isinstance(shown["created_at"], str)
    assert reject_model(registry, "fraud", 1, "bob", "drift").status == REJECTED
    assert show_model(registry, "fraud", parse_version("1"))["champion"] is False
    assert [r.action for r in registry._audit.records()] == ["model-approve", "model-reject"]


@pytest.mark.parametrize("text", ["0", "-1", "v2", "", "latest"])
def test_parse_version_refuses_non_versions(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)


def test_factory_follows_the_backend_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = Backends(Settings(home=tmp_path / "a")).model_registry
    assert isinstance(local, MlflowModelRegistry) and local.db_path == tmp_path / "a" / "state" / "mlflow.db"
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    remote = Backends(Settings(home=tmp_path / "b", backend="aws", lake_bucket=BUCKET)).model_registry
    assert isinstance(remote, SageMakerModelRegistry) and remote.bucket == BUCKET
