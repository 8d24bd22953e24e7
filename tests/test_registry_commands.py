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


# -- history, champion_at, rollback; reading never writes --------------------------------------------------
def test_history_champion_at_and_rollback_functions(registry: SageMakerModelRegistry) -> None:

    from cdp.registry.commands import champion_at, history_table, model_history, parse_moment, rollback_model

    approve_model(registry, "fraud", 1, "alice", "first release")
    approve_model(registry, "fraud", 2, "bob", "retrained")
    rolled = rollback_model(registry, "fraud", "carol", "v2 drifts")
    assert (rolled.version, rolled.is_champion) == (1, True)
    events = model_history(registry, "fraud")
    assert [(e.version, e.change, e.action, e.actor) for e in events] == [
        (1, "became", "approve", "alice"),
        (1, "stopped", "approve", "bob"),
        (2, "became", "approve", "bob"),
        (2, "stopped", "rollback", "carol"),
        (1, "became", "rollback", "carol"),
    ]
    console = Console(width=200, record=True)
    console.print(history_table(events))
    text = console.export_text()
    assert "v2 drifts" in text and "rollback" in text

    today = events[0].at.date()
    assert champion_at(registry, "fraud", parse_moment(today.isoformat())) == {
        "model": "fraud", "day": today.isoformat(), "served": [1, 2, 1],
    }  # fmt: skip
    moment = parse_moment(events[2].at.replace(tzinfo=None).isoformat())  # naive = UTC
    assert champion_at(registry, "fraud", moment)["champion"] == 2
    assert champion_at(registry, "fraud", parse_moment("2000-01-01")) == {
        "model": "fraud", "day": "2000-01-01", "served": [],
    }  # fmt: skip
    with pytest.raises(ValueError, match="--at"):
        parse_moment("yesterday")
    assert [r.action for r in registry._audit.records()] == [
        "model-approve",
        "model-approve",
        "model-rollback",
    ]


def _audit_files(state: Path) -> dict[str, bytes | None]:
    names = ("audit.sqlite", "audit.sqlite-wal", "audit-checkpoints.jsonl")
    return {n: (state / n).read_bytes() if (state / n).exists() else None for n in names}


def test_list_show_and_history_never_open_the_audit_store(tmp_path: Path) -> None:
    """Reading the registry must not write to the audit store: not even SQLite folding its write-ahead
    log into the database when the last connection closes."""
    import gc
    import shutil

    writer = Backends(Settings(home=tmp_path / "a"))
    model_dir = write_tiny_model(tmp_path / "model")
    register(writer.model_registry, "fraud", model_dir)
    approve_model(writer.model_registry, "fraud", 1, "alice", "ok")
    # the approval's audit record is still in the write-ahead log: copy the state as a crash would leave it
    shutil.copytree(writer.settings.state_dir, tmp_path / "b" / "state")
    state = tmp_path / "b" / "state"
    before = _audit_files(state)
    assert before["audit.sqlite-wal"], "premise: the audit record sits in the write-ahead log"

    reader = Backends(Settings(home=tmp_path / "b"))
    from cdp.registry.commands import champion_at, model_history

    assert [v.version for v in list_models(reader.model_registry)] == [1]
    assert show_model(reader.model_registry, "fraud")["version"] == 1
    assert [e.version for e in model_history(reader.model_registry, "fraud")] == [1]
    from datetime import UTC, datetime

    assert champion_at(reader.model_registry, "fraud", datetime.now(UTC))["champion"] == 1
    del reader
    gc.collect()  # closes every connection the reader opened
    assert _audit_files(state) == before
    assert SqliteAuditLog(state / "audit.sqlite", AuditKeys.generate()).records  # still a readable log


def test_aws_listing_writes_no_local_audit_file(registry: SageMakerModelRegistry, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "aws", backend="aws", lake_bucket=BUCKET, aws_region=REGION)
    backends = Backends(settings)
    assert [v.model_name for v in list_models(backends.model_registry)] == ["clv", "fraud", "fraud"]
    assert not (settings.state_dir / "audit.sqlite").exists()


def test_cli_history_and_rollback(tmp_path: Path) -> None:
    import json

    from tests.identity_support import issue
    from tests.test_identity import cli, refused_line

    b = Backends(Settings())
    model_dir = write_tiny_model(tmp_path / "model")
    register(b.model_registry, "fraud", model_dir)
    register(b.model_registry, "fraud", model_dir)
    b.model_registry.approve("fraud", 1, "alice", "first release")
    b.model_registry.approve("fraud", 2, "bob", "retrained")
    ds = issue(b, "ds-1", "data-scientist")
    approver = issue(b, "approver-1", "model-approver")

    line = refused_line(cli("models", "rollback", "fraud", "--reason", "v2 drifts", identity=ds))
    assert "may not model-rollback: needs model-approver" in line
    result = cli("models", "rollback", "fraud", "--reason", "v2 drifts", identity=approver)
    assert result.exit_code == 0, result.output
    assert "fraud v1: champion again" in result.stdout
    assert b.model_registry.champion_version("fraud") == 1

    shown = cli("models", "history", "fraud")  # reading needs no identity, like `models list`
    assert shown.exit_code == 0, shown.output
    assert "approver-1" in shown.stdout and "v2 drifts" in shown.stdout
    day = b.model_registry.history("fraud")[0].at.date().isoformat()
    at = cli("models", "history", "fraud", "--at", day)
    assert at.exit_code == 0, at.output
    assert json.loads(at.stdout) == {"model": "fraud", "day": day, "served": [1, 2, 1]}
    bad = cli("models", "history", "fraud", "--at", "last tuesday")
    assert bad.exit_code == 2 and "--at must be" in bad.output
