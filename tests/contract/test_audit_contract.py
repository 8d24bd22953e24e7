"""Contract of the audit-log port. Only the local adapter (SQLite + signed checkpoint file) exists today;
an AWS adapter joins the suite with one more entry in `ADAPTERS` and its builder.

A harness opens the log as the platform does and again as another process would (`reopen`), and plays an
attacker with write access to the storage but not to the audit keys (`drop_newest`), so the suite checks
the tamper evidence every adapter must keep, not only the happy path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cdp.security.audit.checkpoints_local import LocalCheckpointFile
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH, KEYED_MAC, AuditIntegrityError, AuditLog, AuditRecord
from cdp.security.audit.sqlite import SqliteAuditLog

TOKEN = "usr_" + "a" * 26


@dataclass
class Harness:
    log: AuditLog
    reopen: Callable[[], AuditLog]
    drop_newest: Callable[[], None]  # an attacker deletes the newest record in the storage itself


def _sqlite(tmp_path: Path) -> Iterator[Harness]:
    keys = AuditKeys.generate()
    log_path, checkpoints = tmp_path / "audit.sqlite", tmp_path / "audit-checkpoints.jsonl"

    def open_log() -> SqliteAuditLog:
        return SqliteAuditLog(log_path, keys, LocalCheckpointFile(checkpoints))

    def drop_newest() -> None:
        conn = sqlite3.connect(log_path, isolation_level=None)
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        conn.execute("DELETE FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)")
        conn.close()

    log = open_log()
    yield Harness(log, open_log, drop_newest)
    log.close()


ADAPTERS: dict[str, Callable[..., Iterator[Harness]]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(ADAPTERS))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from ADAPTERS[request.param](tmp_path)


@pytest.fixture
def log(harness: Harness) -> AuditLog:
    return harness.log


def append(log: AuditLog, i: int, **overrides: object) -> AuditRecord:
    entry = dict(
        actor=f"analyst-{i % 3}", role="fraud-ops", action="reveal", customer_token=TOKEN,
        fields=["person", "address"], outcome="allowed", details={"purpose": "fraud-alert", "i": i},
    )  # fmt: skip
    return log.append(**{**entry, **overrides})  # type: ignore[arg-type]


def test_adapter_satisfies_the_port(log: AuditLog) -> None:
    assert isinstance(log, AuditLog)


def test_an_empty_log_verifies(log: AuditLog) -> None:
    assert list(log.records()) == []
    result = log.verify()
    assert result.ok and result.records == 0 and result.head_hash == GENESIS_HASH


def test_append_returns_the_stored_record(log: AuditLog) -> None:
    before = datetime.now().astimezone()
    record = append(log, 1, outcome="denied", details={"purpose": "x", "n": 3, "ok": True, "none": None})
    assert (record.seq, record.actor, record.role, record.action) == (1, "analyst-1", "fraud-ops", "reveal")
    assert (record.customer_token, record.outcome) == (TOKEN, "denied")
    assert record.fields == ("address", "person")  # field names are kept in canonical (sorted) order
    assert dict(record.details) == {"purpose": "x", "n": 3, "ok": True, "none": None}
    assert record.prev_hash == GENESIS_HASH and len(record.hash) == 64 and record.mac_alg == KEYED_MAC
    stamped = datetime.fromisoformat(record.ts)
    assert stamped.utcoffset() == timedelta(0) and abs(stamped - before) < timedelta(minutes=1)
    assert list(log.records()) == [record]


def test_records_chain_in_sequence_order(log: AuditLog) -> None:
    appended = [append(log, i) for i in range(5)]
    stored = list(log.records())
    assert stored == appended
    assert [r.seq for r in stored] == [1, 2, 3, 4, 5]
    assert [r.prev_hash for r in stored[1:]] == [r.hash for r in stored[:-1]]
    assert len({r.hash for r in stored}) == 5
    result = log.verify()
    assert result.ok and result.records == 5 and result.head_hash == stored[-1].hash
    assert result.first_broken_seq is None and result.legacy_records == 0


def test_another_process_sees_the_records_and_continues_the_chain(harness: Harness) -> None:
    first = [append(harness.log, i) for i in range(3)]
    other = harness.reopen()
    assert list(other.records()) == first
    fourth = append(other, 3)
    assert fourth.seq == 4 and fourth.prev_hash == first[-1].hash
    assert harness.log.verify().ok and harness.log.verify().records == 4


def test_details_must_be_flat(log: AuditLog) -> None:
    with pytest.raises(TypeError):
        append(log, 1, details={"nested": {"a": 1}})
    assert list(log.records()) == []


def test_a_deleted_newest_record_is_caught_and_blocks_appends(harness: Harness) -> None:
    for i in range(4):
        append(harness.log, i)
    harness.drop_newest()
    other = harness.reopen()
    result = other.verify()
    assert not result.ok and result.reason
    with pytest.raises(AuditIntegrityError):
        append(other, 9)
