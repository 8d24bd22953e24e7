"""The idempotency index contract, run against both adapters: SQLite (local) and DynamoDB (moto `mock_aws`).

Claims are exclusive (another batch's ids are reported, never taken over), re-claiming for the same batch
is a no-op, `mark_applied` touches only the batch's own claims, lookups handle more ids than one request
or query takes. Then what only one adapter has: the DynamoDB TTL attribute and table setting, consumers
sharing one table, a claim race decided by the conditional write; the SQLite migration of an older index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.backends import Backends
from cdp.idempotency.dynamodb import TABLE_SUFFIX, TTL_ATTRIBUTE, DynamoDbIdempotencyIndex
from cdp.idempotency.port import Claim, IdempotencyIndex
from cdp.idempotency.sqlite import SqliteIdempotencyIndex
from cdp.settings import Settings

REGION = "eu-west-1"
NOW = 1_750_000_000.0
TTL = 8 * 86_400


@pytest.fixture
def aws(monkeypatch) -> Iterator[object]:  # noqa: ANN001
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def dynamodb_index(client, consumer: str = "stream-handler") -> DynamoDbIdempotencyIndex:  # noqa: ANN001
    index = DynamoDbIdempotencyIndex(
        client, f"cdp-{TABLE_SUFFIX}", consumer, ttl_seconds=TTL, clock=lambda: NOW
    )
    if index.table_name not in client.list_tables()["TableNames"]:
        index.create_table()
    return index


@pytest.fixture(params=["sqlite", "dynamodb"])
def index(request, tmp_path: Path) -> Iterator[IdempotencyIndex]:  # noqa: ANN001
    if request.param == "sqlite":
        made: IdempotencyIndex = SqliteIdempotencyIndex(tmp_path / "idempotency.sqlite")
    else:
        made = dynamodb_index(request.getfixturevalue("aws"))
    yield made
    made.close()


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


# -- the contract -----------------------------------------------------------------------------------------
def test_adapters_implement_the_port(index: IdempotencyIndex) -> None:
    assert isinstance(index, IdempotencyIndex)


def test_nothing_is_claimed_at_first(index: IdempotencyIndex) -> None:
    assert index.lookup(ids("a", 3)) == {}
    assert index.claimed_elsewhere(ids("a", 3), "b1") == set()
    assert index.count() == 0


def test_a_claim_is_recorded_and_not_yet_applied(index: IdempotencyIndex) -> None:
    assert index.record(ids("a", 3), "b1") == set()
    assert index.lookup(["a-0", "a-2", "zz"]) == {
        "a-0": Claim("b1", False),
        "a-2": Claim("b1", False),
    }
    assert index.count() == 3


def test_claiming_again_for_the_same_batch_changes_nothing(index: IdempotencyIndex) -> None:
    index.record(ids("a", 3), "b1")
    index.mark_applied(["a-0"], "b1")
    assert index.record(ids("a", 3), "b1") == set()  # a re-delivered batch rewriting its own files
    assert index.lookup(["a-0", "a-1"]) == {"a-0": Claim("b1", True), "a-1": Claim("b1", False)}
    assert index.count() == 3


def test_a_claim_is_exclusive(index: IdempotencyIndex) -> None:
    index.record(["a-0", "a-1"], "b1")
    taken = index.record(["a-1", "a-2", "a-3"], "b2")
    assert taken == {"a-1"}  # reported, not taken over
    assert index.lookup(["a-1", "a-2"]) == {"a-1": Claim("b1", False), "a-2": Claim("b2", False)}
    assert index.claimed_elsewhere(["a-0", "a-1", "a-2", "new"], "b2") == {"a-0", "a-1"}
    assert index.claimed_elsewhere(["a-0", "a-2"], "") == {"a-0", "a-2"}  # "" is no batch: every claimed id


def test_mark_applied_marks_only_the_batch_s_own_claims(index: IdempotencyIndex) -> None:
    index.record(["a-0", "a-1"], "b1")
    index.record(["a-2"], "b2")
    index.mark_applied(["a-0", "a-2", "never-claimed"], "b1")
    assert index.lookup(["a-0", "a-1", "a-2", "never-claimed"]) == {
        "a-0": Claim("b1", True),
        "a-1": Claim("b1", False),
        "a-2": Claim("b2", False),  # b2's claim is not b1's to mark
    }
    assert index.count() == 3  # marking never creates a claim


def test_many_ids_and_repeated_ids(index: IdempotencyIndex) -> None:
    many = ids("m", 730)  # over SQLite's query chunk and DynamoDB's 100-key requests
    assert index.record([*many, *many[:5]], "big") == set()
    index.mark_applied(many[:250], "big")
    found = index.lookup([*many, "other"])
    assert len(found) == 730 and index.count() == 730
    assert sum(e.applied for e in found.values()) == 250
    assert index.claimed_elsewhere(many, "big") == set()


# -- DynamoDB only ----------------------------------------------------------------------------------------
def test_dynamodb_items_carry_the_ttl_attribute_and_the_table_expires_them(aws) -> None:  # noqa: ANN001
    index = dynamodb_index(aws)
    index.record(["a-0"], "b1")
    item = aws.get_item(TableName=index.table_name, Key={"txn_id": {"S": "stream-handler#a-0"}})["Item"]
    assert int(item[TTL_ATTRIBUTE]["N"]) == int(NOW) + TTL
    ttl = aws.describe_time_to_live(TableName=index.table_name)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] in {"ENABLED", "ENABLING"} and ttl["AttributeName"] == TTL_ATTRIBUTE


def test_dynamodb_consumers_share_the_table_without_seeing_each_other(aws) -> None:  # noqa: ANN001
    handler, sink = dynamodb_index(aws, "stream-handler"), dynamodb_index(aws, "lake-sink")
    handler.record(["a-0", "a-1"], "scored-1")
    assert sink.lookup(["a-0"]) == {} and sink.record(["a-0"], "stream-1") == set()
    assert handler.count() == 2 and sink.count() == 1


def test_dynamodb_a_claim_race_is_decided_by_the_conditional_write(aws) -> None:  # noqa: ANN001
    first, second = dynamodb_index(aws), dynamodb_index(aws)
    first.record(["a-1"], "b1")
    second.lookup = lambda txn_ids: {}  # `second` read before `first` claimed: only the write can tell
    assert second.record(["a-0", "a-1", "a-2"], "b2") == {"a-1"}
    assert first.lookup(["a-0", "a-1", "a-2"]) == {
        "a-0": Claim("b2", False),
        "a-1": Claim("b1", False),
        "a-2": Claim("b2", False),
    }


def test_backends_pick_the_adapter_and_keep_one_index_per_consumer(tmp_path: Path, aws) -> None:  # noqa: ANN001
    local = Backends(Settings(home=tmp_path / "home"))
    index = local.idempotency_index("stream-handler")
    assert isinstance(index, SqliteIdempotencyIndex)
    assert local.idempotency_index("stream-handler") is index
    assert local.idempotency_index("lake-sink") is not index
    assert (local.settings.state_dir / "stream-handler-landed.sqlite").exists()  # the stored name, kept
    index.close()
    remote = Backends(Settings(home=tmp_path / "home", backend="aws", aws_region=REGION))
    sink = remote.idempotency_index("lake-sink")
    assert isinstance(sink, DynamoDbIdempotencyIndex) and sink.table_name == f"cdp-{TABLE_SUFFIX}"
    assert sink.consumer == "lake-sink"


# -- SQLite only ------------------------------------------------------------------------------------------
def test_sqlite_index_written_before_the_applied_mark_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE landed (txn_id TEXT PRIMARY KEY, batch TEXT NOT NULL)")
        con.execute("INSERT INTO landed VALUES ('a-0', 'b1')")
    index = SqliteIdempotencyIndex(path)
    assert index.lookup(["a-0"]) == {"a-0": Claim("b1", True)}  # claimed by the old code: applied
    assert index.record(["a-1"], "b2") == set() and index.lookup(["a-1"])["a-1"].applied is False
    index.close()
