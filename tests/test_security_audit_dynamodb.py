"""The DynamoDB audit log beyond the shared contract (tests/contract/test_audit_log_contract.py): the
lost race of two writers, paginated reads, unreadable items, a checkpoint that lags the records a verify
read, and aws mode writing no local audit file."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.security.audit.checkpoints.port import Checkpoint, sign_checkpoint
from cdp.security.audit.checkpoints.s3 import S3Checkpoints
from cdp.security.audit.dynamodb import DynamoDbAuditLog
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH

REGION = "eu-west-1"
TABLE = "cdp-audit-test"
BUCKET = "cdp-audit-checkpoints-test"
TOKEN = "usr_" + "c" * 26
CONTENT = {
    "actor": "analyst-1", "role": "fraud-ops", "action": "reveal", "customer_token": TOKEN,
    "fields": ["person"], "outcome": "allowed", "details": {"purpose": "fraud-alert"},
}  # fmt: skip


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def env(aws) -> dict[str, Any]:
    client = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    keys = AuditKeys.generate()
    log = DynamoDbAuditLog(client, TABLE, lambda: keys, S3Checkpoints(s3, BUCKET))
    log.create_table()
    log.verify()  # loads the new keys: seals the empty log
    return {"client": client, "checkpoints": S3Checkpoints(s3, BUCKET), "keys": keys, "log": log}


def _open(env: dict[str, Any], client: Any = None, checkpoints: Any = None) -> DynamoDbAuditLog:
    k = env["keys"]
    return DynamoDbAuditLog(
        client or env["client"],
        TABLE,
        AuditKeys(k.mac_key, k.checkpoint_key),
        checkpoints or env["checkpoints"],
    )


def test_of_two_writers_that_read_the_same_head_exactly_one_commits(env):
    a, b = _open(env), _open(env)
    a.append(**CONTENT)
    head = a._head()
    first = a._next_record(*head, **CONTENT)
    second = b._next_record(*head, **CONTENT)
    assert first.seq == second.seq == 2
    assert a._commit(first, *head) is True
    assert b._commit(second, *head) is False  # the loser re-reads the head and tries again
    assert [r.seq for r in _open(env).records()] == [1, 2]
    assert list(_open(env).records())[1] == first and a._head() == (2, first.hash)


def test_the_head_item_moves_with_each_append_and_is_not_a_record(env):
    log = _open(env)
    assert log._head() == (0, GENESIS_HASH)
    record = log.append(**CONTENT)
    assert log._head() == (1, record.hash)
    assert [r.seq for r in log.records()] == [1]


class _SmallPages:
    """The DynamoDB client with queries limited to two items a page (as large logs page at 1 MB)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.pages = 0

    def query(self, **kwargs: Any) -> dict[str, Any]:
        self.pages += 1
        return self.inner.query(**kwargs, Limit=2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_records_and_verify_read_every_page_in_seq_order(env):
    writer = _open(env)
    for _ in range(7):
        writer.append(**CONTENT)
    paged = _SmallPages(env["client"])
    log = _open(env, client=paged)
    assert [r.seq for r in log.records()] == list(range(1, 8))
    result = log.verify()
    assert result.ok and result.records == 7 and paged.pages >= 8


def test_an_unreadable_item_is_reported_at_its_seq(env):
    log = _open(env)
    for _ in range(3):
        log.append(**CONTENT)
    env["client"].update_item(
        TableName=TABLE, Key={"log": {"S": "cdp"}, "seq": {"N": "2"}},
        UpdateExpression="SET details = :d REMOVE actor",
        ExpressionAttributeValues={":d": {"S": "{not json"}},
    )  # fmt: skip
    result = _open(env).verify()
    assert not result.ok and result.first_broken_seq == 2 and "MAC" in result.reason


class _LaggingCheckpoints:
    """Returns an older genuine checkpoint first (the one a verify read before a writer signed), then
    runs `meanwhile` (more appends) and returns the store's latest."""

    def __init__(self, inner: S3Checkpoints, stale: Checkpoint, meanwhile: Any = None) -> None:
        self.inner, self.stale, self.meanwhile, self.reads = inner, stale, meanwhile, 0

    def append(self, checkpoint: Checkpoint) -> None:
        self.inner.append(checkpoint)

    def latest(self) -> Checkpoint | None:
        self.reads += 1
        if self.reads == 1:
            return self.stale
        if self.meanwhile is not None:
            self.meanwhile()
            self.meanwhile = None
        return self.inner.latest()


@pytest.mark.parametrize("grows_meanwhile", [False, True])
def test_verify_waits_for_the_checkpoint_of_records_appended_while_it_read(env, grows_meanwhile):
    writer = _open(env)
    records = [writer.append(**CONTENT) for _ in range(5)]
    stale = sign_checkpoint(env["keys"].checkpoint_key, 3, records[2].hash)
    meanwhile = (lambda: [writer.append(**CONTENT) for _ in range(2)]) if grows_meanwhile else None
    lagging = _LaggingCheckpoints(env["checkpoints"], stale, meanwhile)
    result = _open(env, checkpoints=lagging).verify()
    total = 7 if grows_meanwhile else 5
    assert result.ok, result
    assert (result.records, result.checkpoint_count) == (total, total) and lagging.reads >= 2


def test_verify_still_reports_records_nobody_signs(env):
    writer = _open(env)
    records = [writer.append(**CONTENT) for _ in range(4)]
    stale = sign_checkpoint(env["keys"].checkpoint_key, 2, records[1].hash)

    class Frozen(_LaggingCheckpoints):
        def latest(self) -> Checkpoint | None:
            self.reads += 1
            return self.stale

    frozen = Frozen(env["checkpoints"], stale)
    result = _open(env, checkpoints=frozen).verify()
    assert not result.ok and result.first_broken_seq == 3 and "not covered" in result.reason
    assert frozen.reads > 2  # it re-read before reporting


# -- aws mode ---------------------------------------------------------------------------------------------
def test_aws_mode_audits_to_dynamodb_and_s3_and_writes_no_local_audit_file(aws, monkeypatch):
    from cdp.backends import Backends
    from cdp.security.datakeys.dynamodb import create_table
    from cdp.security.keys.kms import create_key
    from cdp.settings import Settings

    monkeypatch.setenv("CDP_BACKEND", "aws")
    monkeypatch.setenv("CDP_AUDIT_TABLE", "cdp-audit-e2e")
    b = Backends(Settings())
    create_key(boto3.client("kms", region_name=REGION), alias=b.settings.kms_key_id)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_table(dynamodb, f"{b.settings.dynamodb_table_prefix}data-keys")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket=b.settings.audit_checkpoint_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    assert isinstance(b.audit, DynamoDbAuditLog) and b.audit.table == "cdp-audit-e2e"
    b.audit.create_table()
    record = b.audit.append(**CONTENT)
    result = Backends(Settings()).audit.verify()
    assert result.ok and (result.records, result.checkpoint_count) == (1, 1)
    stored = dynamodb.query(
        TableName="cdp-audit-e2e", KeyConditionExpression="#l = :l AND seq > :z",
        ExpressionAttributeNames={"#l": "log"},
        ExpressionAttributeValues={":l": {"S": "cdp"}, ":z": {"N": "0"}},
    )["Items"]  # fmt: skip
    assert [item["hash"]["S"] for item in stored] == [record.hash]
    listed = s3.list_objects_v2(Bucket=b.settings.audit_checkpoint_bucket)["Contents"]
    assert len(listed) == 2  # the seal of the empty log, then the append's
    home = b.settings.home
    assert not [p for p in home.rglob("*") if "audit" in p.name], sorted(home.rglob("*"))
