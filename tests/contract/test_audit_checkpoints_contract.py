"""Contract of the audit-checkpoints port: signed heads of the audit log kept apart from it, in an
append-only file here and as write-once objects in an S3 bucket (moto) in AWS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.security.audit.checkpoints.local import LocalCheckpointFile
from cdp.security.audit.checkpoints.port import AuditCheckpoints, sign_checkpoint
from cdp.security.audit.checkpoints.s3 import S3Checkpoints
from tests.contract.moto_env import REGION, use_fake_aws_credentials

KEY = b"k" * 32
BUCKET = "cdp-audit-checkpoints"


def _local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], AuditCheckpoints]]:
    yield lambda: LocalCheckpointFile(tmp_path / "audit-checkpoints.jsonl")


def _s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], AuditCheckpoints]]:
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=True,
        )
        yield lambda: S3Checkpoints(boto3.client("s3", region_name=REGION), BUCKET)


ADAPTERS = {"local": _local, "s3": _s3}


@pytest.fixture(params=sorted(ADAPTERS))
def opener(request, tmp_path, monkeypatch) -> Iterator[Callable[[], AuditCheckpoints]]:
    """Opens the store as a new process would (the same file or bucket each time)."""
    yield from ADAPTERS[request.param](tmp_path, monkeypatch)


def test_adapter_satisfies_the_port(opener) -> None:
    assert isinstance(opener(), AuditCheckpoints)


def test_an_empty_store_has_no_latest(opener) -> None:
    assert opener().latest() is None


def test_the_newest_checkpoint_is_latest_and_reads_back_signed(opener) -> None:
    store = opener()
    first, second = sign_checkpoint(KEY, 1, "a" * 64), sign_checkpoint(KEY, 2, "b" * 64)
    store.append(first)
    assert opener().latest() == first
    store.append(second)
    latest = opener().latest()
    assert latest == second and latest.count == 2 and latest.head == "b" * 64
    assert latest.signature_ok(KEY) and not latest.signature_ok(b"x" * 32)  # the signature survives storage


def test_many_checkpoints_latest_is_the_highest_count(opener) -> None:
    store = opener()
    for count in range(1, 26):
        store.append(sign_checkpoint(KEY, count, f"{count:064x}"))
    assert opener().latest().count == 25
