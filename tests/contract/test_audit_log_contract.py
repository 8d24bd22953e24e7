"""Contract of the audit-log port, run against both adapters: SQLite + a checkpoint file, and DynamoDB +
S3 checkpoints (moto).

Each adapter's harness gives the attacker's raw access to its storage (edit, delete, reorder records
without the key); the same attacks must then be reported by `verify()` at the same record, appends must
refuse to extend a tampered log, and concurrent appenders must never fork the chain.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.security.audit.checkpoints.local import LocalCheckpointFile
from cdp.security.audit.checkpoints.port import AuditCheckpoints, Checkpoint
from cdp.security.audit.checkpoints.s3 import S3Checkpoints
from cdp.security.audit.dynamodb import DynamoDbAuditLog
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH, AuditIntegrityError, AuditLog, AuditRecord
from cdp.security.audit.sqlite import SqliteAuditLog

REGION = "eu-west-1"
TABLE = "cdp-audit-test"
BUCKET = "cdp-audit-checkpoints-test"
N = 6
TOKEN = "usr_" + "b" * 26


@dataclass
class Harness:
    """A log's storage: `open()` a fresh instance (as another process would), and the attacker's raw ops."""

    adapter: str
    open_with: Callable[[AuditKeys, AuditCheckpoints | None], AuditLog]
    checkpoints: AuditCheckpoints
    edit: Callable[[int, str, str], None]  # (seq, column, value): change a stored record without the key
    delete: Callable[[int], None]
    swap: Callable[[int, int], None]  # exchange two records' positions in the log
    keys: AuditKeys

    def open(self, checkpoints: AuditCheckpoints | None = None) -> AuditLog:
        return self.open_with(AuditKeys(self.keys.mac_key, self.keys.checkpoint_key), checkpoints)


def _sqlite(tmp_path: Path) -> Iterator[Harness]:
    path = tmp_path / "state" / "audit.sqlite"
    checkpoints = LocalCheckpointFile(tmp_path / "state" / "audit-checkpoints.jsonl")

    def raw() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        return conn

    def edit(seq: int, column: str, value: str) -> None:
        raw().execute(f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (value, seq))

    def delete(seq: int) -> None:
        raw().execute("DELETE FROM audit_log WHERE seq = ?", (seq,))

    def swap(a: int, b: int) -> None:
        raw().execute(
            "UPDATE audit_log SET seq = CASE seq WHEN ? THEN ? ELSE ? END WHERE seq IN (?, ?)",
            (a, b, a, a, b),
        )

    def open_with(keys: AuditKeys, cps: AuditCheckpoints | None) -> AuditLog:
        return SqliteAuditLog(path, keys, cps or checkpoints)

    keys = AuditKeys.generate()
    SqliteAuditLog(path, keys, checkpoints)  # created keys: seals the empty log
    yield Harness("sqlite", open_with, checkpoints, edit, delete, swap, keys)


def _dynamodb(monkeypatch) -> Iterator[Harness]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    _serialise_moto_dynamodb_requests(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        checkpoints = S3Checkpoints(s3, BUCKET)

        def key(seq: int) -> dict[str, Any]:
            return {"log": {"S": "cdp"}, "seq": {"N": str(seq)}}

        def item(seq: int) -> dict[str, Any]:
            return client.get_item(TableName=TABLE, Key=key(seq), ConsistentRead=True)["Item"]

        def edit(seq: int, column: str, value: str) -> None:
            client.put_item(TableName=TABLE, Item={**item(seq), column: {"S": value}})

        def delete(seq: int) -> None:
            client.delete_item(TableName=TABLE, Key=key(seq))

        def swap(a: int, b: int) -> None:
            item_a, item_b = item(a), item(b)
            client.put_item(TableName=TABLE, Item={**item_b, "seq": {"N": str(a)}})
            client.put_item(TableName=TABLE, Item={**item_a, "seq": {"N": str(b)}})

        def open_with(keys: AuditKeys, cps: AuditCheckpoints | None) -> AuditLog:
            return DynamoDbAuditLog(client, TABLE, keys, cps or checkpoints)

        keys = AuditKeys.generate()
        DynamoDbAuditLog(client, TABLE, AuditKeys.generate, checkpoints).create_table()
        DynamoDbAuditLog(client, TABLE, keys, checkpoints)  # created keys: seals the empty log
        yield Harness("dynamodb", open_with, checkpoints, edit, delete, swap, keys)


def _serialise_moto_dynamodb_requests(monkeypatch) -> None:
    """DynamoDB applies each request atomically; moto does not across threads (a transaction deep-copies
    and restores whole tables). One lock per request gives the emulator the service's atomicity; the
    races between one writer's reads and its transaction stay real."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)


@pytest.fixture(params=["sqlite", "dynamodb"])
def harness(request, tmp_path, monkeypatch) -> Iterator[Harness]:
    yield from (_sqlite(tmp_path) if request.param == "sqlite" else _dynamodb(monkeypatch))


@pytest.fixture
def filled(harness: Harness) -> Harness:
    log = harness.open()
    for i in range(N):
        _append(log, i)
    assert log.verify().ok
    return harness


def _append(log: AuditLog, i: int) -> AuditRecord:
    return log.append(
        actor=f"analyst-{i % 3}", role="fraud-ops", action="reveal", customer_token=TOKEN,
        fields=["person", "address"], outcome="allowed", details={"purpose": "fraud-alert", "i": i, "x": 0.1},
    )  # fmt: skip


def _broken_at(h: Harness, seq: int | None, *words: str) -> None:
    result = h.open().verify()
    assert not result.ok, result
    assert result.first_broken_seq == seq, result
    for word in words:
        assert word in result.reason, result.reason


# -- healthy use ------------------------------------------------------------------------------------------
def test_appends_chain_read_back_exactly_and_verify(harness):
    log = harness.open()
    assert harness.open().verify().ok and list(log.records()) == []
    written = [_append(log, i) for i in range(3)]
    assert [r.seq for r in written] == [1, 2, 3]
    assert written[1].prev_hash == written[0].hash and written[2].prev_hash == written[1].hash
    assert list(harness.open().records()) == written  # fields sorted, details' types kept
    assert written[0].fields == ("address", "person") and written[0].details["x"] == 0.1
    result = harness.open().verify()
    assert result.ok and (result.records, result.checkpoint_count) == (3, 3)
    assert result.head_hash == written[-1].hash
    assert harness.checkpoints.latest().count == 3


def _entry(i: int) -> dict[str, Any]:
    return {
        "actor": "notifier-1", "role": "notifier", "action": "reveal", "customer_token": TOKEN,
        "fields": ["person"], "outcome": "allowed", "details": {"purpose": "fraud-notice", "i": i},
    }  # fmt: skip


def test_a_batch_appends_one_chained_record_per_entry_and_verifies(harness):
    log = harness.open()
    first = _append(log, 0)
    batch = log.append_many([_entry(i) for i in range(4)])
    assert [r.seq for r in batch] == [2, 3, 4, 5]
    assert batch[0].prev_hash == first.hash
    assert all(b.prev_hash == a.hash for a, b in zip(batch, batch[1:], strict=False))
    assert [r.details["i"] for r in batch] == [0, 1, 2, 3]
    assert list(harness.open().records()) == [first, *batch]
    assert log.append_many([]) == []
    after = _append(harness.open(), 5)  # another writer continues the chain after the batch
    assert after.seq == 6 and after.prev_hash == batch[-1].hash
    result = harness.open().verify()
    assert result.ok and (result.records, result.checkpoint_count) == (6, 6)


def test_a_batch_with_a_bad_entry_appends_nothing(harness):
    log = harness.open()
    with pytest.raises(TypeError, match="flat scalars"):
        log.append_many([_entry(0), {**_entry(1), "details": {"nested": {"pii": "x"}}}])
    assert list(harness.open().records()) == []


def test_details_must_be_flat_scalars(harness):
    with pytest.raises(TypeError, match="flat scalars"):
        harness.open().append(
            actor="a", role="r", action="reveal", customer_token=TOKEN, fields=[], outcome="allowed",
            details={"nested": {"pii": "x"}},
        )  # fmt: skip
    assert list(harness.open().records()) == []


def test_a_log_read_with_other_keys_fails_verification(filled):
    other = filled.open_with(AuditKeys(b"m" * 32, b"c" * 32), None)
    result = other.verify()
    assert not result.ok and result.first_broken_seq == 1 and "MAC" in result.reason


# -- attacks on the records -------------------------------------------------------------------------------
def test_changing_a_record_is_caught(filled):
    filled.edit(3, "actor", "someone-else")
    _broken_at(filled, 3, "MAC")


def test_deleting_a_record_is_caught(filled):
    filled.delete(3)
    _broken_at(filled, 4, "expected seq 3", "missing")


def test_deleting_the_newest_record_is_caught(filled):
    filled.delete(N)
    _broken_at(filled, N, f"ends at seq {N - 1}", f"covers {N} records")


def test_deleting_every_record_is_caught(filled):
    for seq in range(1, N + 1):
        filled.delete(seq)
    _broken_at(filled, 1, "ends at seq 0")


def test_reordering_records_is_caught(filled):
    filled.swap(2, 5)
    _broken_at(filled, 2, "prev_hash")


def test_appends_refuse_to_extend_a_log_missing_its_newest_record(filled):
    filled.delete(N)
    with pytest.raises(AuditIntegrityError):
        _append(filled.open(), 99)
    assert [r.seq for r in filled.open().records()] == list(range(1, N))  # nothing was added


def test_appends_refuse_to_extend_an_altered_newest_record(filled):
    filled.edit(N, "hash", "f" * 64)
    with pytest.raises(AuditIntegrityError):
        _append(filled.open(), 99)
    assert len(list(filled.open().records())) == N


# -- a writer stopped between storing a record and signing it -------------------------------------------
class _LostCheckpoints:
    """A checkpoint store whose writes fail (the writer dies before signing)."""

    def __init__(self, inner: AuditCheckpoints) -> None:
        self.inner = inner

    def append(self, checkpoint: Checkpoint) -> None:
        raise OSError("gone before signing")

    def latest(self) -> Checkpoint | None:
        return self.inner.latest()


def test_a_record_stored_without_its_checkpoint_is_reported_then_healed(filled):
    with pytest.raises(OSError):
        _append(filled.open(_LostCheckpoints(filled.checkpoints)), N)
    _broken_at(filled, N + 1, "not covered by a signed checkpoint")
    log = filled.open()
    _append(log, N + 1)  # checks record N+1's MAC, then signs a head covering it
    result = filled.open().verify()
    assert result.ok and result.records == N + 2 and result.checkpoint_count == N + 2


# -- concurrency ------------------------------------------------------------------------------------------
def test_concurrent_appenders_never_fork_the_chain(filled):
    per_writer, errors = 15, []
    written: list[AuditRecord] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        log = filled.open()  # each writer its own instance, as separate processes would have
        try:
            for i in range(per_writer):
                record = _append(log, k * 1000 + i)
                with lock:
                    written.append(record)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    total = N + 3 * per_writer
    assert sorted(r.seq for r in written) == list(range(N + 1, total + 1))  # each seq won by exactly one
    stored = list(filled.open().records())
    assert [r.seq for r in stored] == list(range(1, total + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(stored, stored[1:], strict=False))
    assert {r.hash for r in written} <= {r.hash for r in stored}  # every returned record is the stored one
    result = filled.open().verify()
    assert result.ok and result.records == total and result.checkpoint_count == total


def test_an_empty_log_verifies_at_the_genesis_head(harness):
    result = harness.open().verify()
    assert result.ok and result.records == 0 and result.head_hash == GENESIS_HASH


def test_another_process_sees_the_records_and_continues_the_chain(harness):
    first = [_append(harness.open(), i) for i in range(3)]
    other = harness.open()
    assert list(other.records()) == first
    fourth = _append(other, 3)
    assert fourth.seq == 4 and fourth.prev_hash == first[-1].hash
    result = harness.open().verify()
    assert result.ok and result.records == 4
