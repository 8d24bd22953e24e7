"""Attacks on the audit log by someone who can write its files but cannot use the key manager.

Each attack passed `verify()` (or went unnoticed) with the former unkeyed SHA-256 chain: deleting the newest
records, emptying or truncating the log, rolling it back, or editing a record and recomputing every later
hash. With records MAC'd under a key-manager key and the head signed into a separate checkpoint store after
every append, each is caught and `verify()` names the first bad record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import sqlite3
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from cdp.security.audit.chain import record_hash, record_mac
from cdp.security.audit.checkpoints.local import LocalCheckpointFile
from cdp.security.audit.checkpoints.port import Checkpoint, CheckpointUnreadable, sign_checkpoint
from cdp.security.audit.checkpoints.s3 import S3Checkpoints
from cdp.security.audit.keys import AUDIT_CHECKPOINT_KEY_ID, AUDIT_MAC_KEY_ID, AuditKeys, load_audit_keys
from cdp.security.audit.port import GENESIS_HASH, AuditIntegrityError, AuditLog
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.keys.local import LocalKeyring

N = 6
TOKEN = "usr_" + "a" * 26


class Platform:
    """The audit log as the platform opens it: keys from the key manager, checkpoints in their own file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_path = root / "state" / "audit.sqlite"
        self.checkpoint_path = root / "state" / "audit-checkpoints.jsonl"

    def keys(self) -> AuditKeys:
        return load_audit_keys(
            LocalKeyring(self.root / "keyring.json"), SqliteDataKeyStore(self.root / "data_keys.sqlite")
        )

    def open(self) -> SqliteAuditLog:
        """A fresh instance (as another process, or `cdp audit verify`, would open it)."""
        return SqliteAuditLog(self.log_path, self.keys(), LocalCheckpointFile(self.checkpoint_path))

    def raw(self) -> sqlite3.Connection:
        """The attacker's connection: the append-only triggers dropped first."""
        conn = sqlite3.connect(self.log_path, isolation_level=None)
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        return conn


def _append(log: AuditLog, i: int) -> None:
    log.append(
        actor=f"analyst-{i % 3}", role="fraud-ops", action="reveal", customer_token=TOKEN,
        fields=["person"], outcome="allowed", details={"purpose": "fraud-alert", "i": i},
    )  # fmt: skip


@pytest.fixture
def platform(tmp_path) -> Platform:
    p = Platform(tmp_path)
    log = p.open()
    for i in range(N):
        _append(log, i)
    assert log.verify().ok
    log.close()
    return p


def _broken_at(p: Platform, seq: int | None, *words: str) -> None:
    result = p.open().verify()
    assert not result.ok, result
    assert result.first_broken_seq == seq, result
    for w in words:
        assert w in result.reason, result.reason


def _rows(conn: sqlite3.Connection) -> list[dict]:
    cur = conn.execute("SELECT * FROM audit_log ORDER BY seq")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur]


def _rewrite(conn: sqlite3.Connection, rows: list[dict]) -> None:
    conn.execute("DELETE FROM audit_log")
    for r in rows:
        conn.execute(
            f"INSERT INTO audit_log ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})", tuple(r.values())
        )


def _doc(row: dict) -> dict:
    return {**row, "fields": json.loads(row["fields"]), "details": json.loads(row["details"])}


def _rechain(conn: sqlite3.Connection, edit_seq: int, chain_value, mac_alg: str | None = None) -> None:
    """Edit record `edit_seq` and recompute every later chain value with `chain_value(doc)`."""
    rows = _rows(conn)
    prev = rows[edit_seq - 2]["hash"] if edit_seq > 1 else GENESIS_HASH
    for r in rows[edit_seq - 1 :]:
        if r["seq"] == edit_seq:
            r["actor"] = "someone-else"
        r["prev_hash"] = prev
        if mac_alg:
            r["mac_alg"] = mac_alg
        r["hash"] = prev = chain_value(_doc(r))
    _rewrite(conn, rows)


# -- attacks on the records -------------------------------------------------------------------------------
def test_deleting_the_last_record_is_caught(platform):
    platform.raw().execute(f"DELETE FROM audit_log WHERE seq = {N}")
    _broken_at(platform, N, f"ends at seq {N - 1}", f"covers {N} records")


def test_deleting_every_record_is_caught(platform):
    platform.raw().execute("DELETE FROM audit_log")
    _broken_at(platform, 1, "ends at seq 0")


def test_truncating_the_file_to_zero_is_caught(platform):
    conn = sqlite3.connect(platform.log_path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for extra in platform.log_path.parent.glob("audit.sqlite-*"):
        extra.unlink()
    os.truncate(platform.log_path, 0)
    _broken_at(platform, 1, "ends at seq 0")


def test_rechaining_with_plain_sha256_is_caught(platform):
    """The former scheme: anyone can recompute SHA-256 over an edited record and everything after it."""
    _rechain(platform.raw(), 3, record_hash)
    _broken_at(platform, 3, "MAC")


def test_downgrading_the_tail_to_the_legacy_format_is_caught(platform):
    _rechain(platform.raw(), 3, record_hash, mac_alg="sha256")
    _broken_at(platform, 3, "not allowed")


def test_downgrading_the_whole_log_to_the_legacy_format_is_caught(platform):
    """Every record rewritten as a legacy record: the chain is self-consistent, the signed head is not."""
    _rechain(platform.raw(), 1, record_hash, mac_alg="sha256")
    _broken_at(platform, N, "signed checkpoint")


def test_rechaining_with_a_wrong_key_is_caught(platform):
    wrong = secrets.token_bytes(32)
    _rechain(platform.raw(), 3, lambda doc: record_mac(wrong, doc))
    _broken_at(platform, 3, "MAC")


def test_inserting_a_record_is_caught(platform):
    conn = platform.raw()
    row = _rows(conn)[1]
    conn.execute(
        f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    _broken_at(platform, 2, "seq")


def test_appending_a_forged_record_is_caught(platform):
    conn = platform.raw()
    last = _rows(conn)[-1]
    forged = {**last, "seq": N + 1, "prev_hash": last["hash"], "actor": "ghost"}
    forged["hash"] = record_mac(secrets.token_bytes(32), _doc(forged))
    conn.execute(
        f"INSERT INTO audit_log ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
        tuple(forged.values()),
    )
    _broken_at(platform, N + 1, "MAC")


def test_reordering_records_is_caught(platform):
    platform.raw().execute(
        "UPDATE audit_log SET seq = CASE seq WHEN 2 THEN 5 WHEN 5 THEN 2 END WHERE seq IN (2, 5)"
    )
    _broken_at(platform, 2)


def test_rolling_the_log_back_to_an_older_copy_is_caught(platform):
    old = sqlite3.connect(platform.root / "old.sqlite")
    with sqlite3.connect(platform.log_path) as live:
        live.backup(old)  # a copy of the log with N records
    old.close()
    log = platform.open()
    for i in range(3):
        _append(log, N + i)
    log.close()
    for extra in platform.log_path.parent.glob("audit.sqlite-*"):
        extra.unlink()
    os.replace(platform.root / "old.sqlite", platform.log_path)
    _broken_at(platform, N + 1, f"ends at seq {N}", f"covers {N + 3}")


def test_appends_refuse_to_extend_a_tampered_log(platform):
    platform.raw().execute(f"DELETE FROM audit_log WHERE seq = {N}")
    with pytest.raises(AuditIntegrityError, match="checkpoint covers"):
        _append(platform.open(), 99)
    assert len(list(platform.open().records())) == N - 1  # nothing was added


# -- attacks on the checkpoints ---------------------------------------------------------------------------
def _checkpoint_lines(p: Platform) -> list[str]:
    return p.checkpoint_path.read_text().splitlines()


def test_editing_the_checkpoint_count_is_caught(platform):
    lines = _checkpoint_lines(platform)
    doc = json.loads(lines[-1])
    doc["count"] = N - 1
    platform.checkpoint_path.write_text("\n".join([*lines[:-1], json.dumps(doc)]) + "\n")
    platform.raw().execute(f"DELETE FROM audit_log WHERE seq = {N}")  # ...to hide this deletion
    _broken_at(platform, None, "bad signature")


def test_dropping_the_last_checkpoint_is_caught(platform):
    lines = _checkpoint_lines(platform)
    platform.checkpoint_path.write_text("\n".join(lines[:-1]) + "\n")
    _broken_at(platform, N, "not covered by a signed checkpoint")


def test_a_forged_checkpoint_signature_is_caught(platform):
    platform.raw().execute(f"DELETE FROM audit_log WHERE seq = {N}")
    head = _rows(platform.raw())[-1]["hash"]
    forged = sign_checkpoint(secrets.token_bytes(32), N - 1, head)  # signed without the checkpoint key
    with open(platform.checkpoint_path, "a") as f:
        f.write(forged.to_json() + "\n")
    _broken_at(platform, None, "bad signature")


def test_a_checkpoint_signed_with_the_record_key_is_refused(platform):
    """The two keys are separate: a record-MAC holder cannot sign heads."""
    keys = platform.keys()
    assert keys.mac_key != keys.checkpoint_key
    forged = sign_checkpoint(keys.mac_key, N, _rows(platform.raw())[-1]["hash"])
    with open(platform.checkpoint_path, "a") as f:
        f.write(forged.to_json() + "\n")
    _broken_at(platform, None, "bad signature")


def test_garbage_in_the_checkpoint_file_is_caught(platform):
    with open(platform.checkpoint_path, "a") as f:
        f.write('{"v": 1, "count": "lots"}\n')
    _broken_at(platform, None, "checkpoint store altered")


def test_deleting_the_checkpoint_file_is_caught(platform):
    platform.checkpoint_path.unlink()
    _broken_at(platform, 1, "no signed checkpoint")
    with pytest.raises(AuditIntegrityError, match="no signed checkpoint"):
        _append(platform.open(), 99)


def test_emptying_log_and_checkpoints_together_is_caught(platform):
    """Keys exist, so a checkpoint was signed when they were made: an empty store is never 'fresh'."""
    platform.raw().execute("DELETE FROM audit_log")
    platform.checkpoint_path.write_text("")
    _broken_at(platform, None, "no signed checkpoint")


# -- crash between the record's commit and the checkpoint ------------------------------------------------
class _FailingCheckpoints(LocalCheckpointFile):
    def append(self, checkpoint: Checkpoint) -> None:
        raise OSError("disk gone")


def test_a_record_committed_without_its_checkpoint_is_reported_then_healed(platform):
    crashed = SqliteAuditLog(
        platform.log_path, platform.keys(), _FailingCheckpoints(platform.checkpoint_path)
    )
    with pytest.raises(OSError):
        _append(crashed, N)
    _broken_at(platform, N + 1, "not covered by a signed checkpoint")
    log = platform.open()
    _append(log, N + 1)  # checks record N+1's MAC, then signs a head covering it
    result = log.verify()
    assert result.ok and result.records == N + 2 and result.checkpoint_count == N + 2


def test_a_forged_record_beyond_the_checkpoint_is_not_healed(platform):
    conn = platform.raw()
    last = _rows(conn)[-1]
    forged = {**last, "seq": N + 1, "prev_hash": last["hash"]}
    forged["hash"] = record_mac(secrets.token_bytes(32), _doc(forged))
    conn.execute(
        f"INSERT INTO audit_log ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
        tuple(forged.values()),
    )
    with pytest.raises(AuditIntegrityError, match=f"record {N + 1} after the last signed checkpoint"):
        _append(platform.open(), 99)


# -- legacy logs (written before keyed auditing) ---------------------------------------------------------
_OLD_SCHEMA = """
CREATE TABLE audit_log (seq INTEGER NOT NULL, ts TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
    action TEXT NOT NULL, customer_token TEXT NOT NULL, fields TEXT NOT NULL, outcome TEXT NOT NULL,
    details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
"""


def _write_legacy_log(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(_OLD_SCHEMA)
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        doc = {
            "seq": seq, "ts": f"2024-01-01T00:00:0{seq}.000000+00:00", "actor": "old", "role": "fraud-ops",
            "action": "reveal", "customer_token": TOKEN, "fields": ["person"], "outcome": "allowed",
            "details": {}, "prev_hash": prev,
        }  # fmt: skip
        doc["hash"] = prev = record_hash(doc)
        row = {**doc, "fields": json.dumps(doc["fields"]), "details": "{}"}
        conn.execute(
            f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
    conn.close()


def test_a_legacy_log_is_sealed_when_the_audit_keys_are_made_and_stays_verifiable(tmp_path):
    p = Platform(tmp_path)
    _write_legacy_log(p.log_path, 3)
    log = p.open()  # creates the audit keys: signs the legacy head
    result = log.verify()
    assert result.ok and (result.records, result.legacy_records, result.checkpoint_count) == (3, 3, 3)
    _append(log, 0)
    result = p.open().verify()
    assert result.ok and (result.records, result.legacy_records) == (4, 3)
    assert [r.mac_alg for r in log.records()] == ["sha256"] * 3 + ["hmac-sha256"]
    # Editing a legacy record and recomputing the legacy chain breaks the first keyed record's link.
    _rechain(p.raw(), 2, record_hash, mac_alg=None)
    result = p.open().verify()
    assert not result.ok and result.first_broken_seq == 4 and "MAC" in result.reason


def test_a_legacy_log_found_after_the_keys_exist_is_not_vouched_for(tmp_path):
    p = Platform(tmp_path)
    p.keys()  # keys made earlier (e.g. a log that was then replaced by an unkeyed one)
    _write_legacy_log(p.log_path, 3)
    result = p.open().verify()
    assert not result.ok and "no signed checkpoint" in result.reason


# -- healthy use --------------------------------------------------------------------------------------------
def _appender(root: str, start: int, n: int) -> None:
    log = Platform(Path(root)).open()
    for i in range(start, start + n):
        _append(log, i)


def test_many_appends_from_two_processes_verify_with_ordered_checkpoints(platform):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_appender, args=(str(platform.root), k * 1000, 60)) for k in (1, 2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    result = platform.open().verify()
    assert result.ok and result.records == N + 120 and result.checkpoint_count == N + 120
    counts = [json.loads(line)["count"] for line in _checkpoint_lines(platform)]
    assert counts == list(range(N + 121))  # genesis, then one per append, in order


def test_audit_keys_are_platform_keys_under_reserved_ids(tmp_path):
    keyring, store = LocalKeyring(tmp_path / "k.json"), SqliteDataKeyStore(tmp_path / "dk.sqlite")
    first = load_audit_keys(keyring, store)
    again = load_audit_keys(keyring, store)
    assert first.created and not again.created
    assert (first.mac_key, first.checkpoint_key) == (again.mac_key, again.checkpoint_key)
    assert store.get(AUDIT_MAC_KEY_ID) and store.get(AUDIT_CHECKPOINT_KEY_ID)
    assert first.mac_key not in store.get(AUDIT_MAC_KEY_ID)  # stored wrapped only
    assert "key" not in repr(first).lower().replace("auditkeys", "")


def test_the_record_mac_is_hmac_sha256_over_the_canonical_record(tmp_path):
    keys = AuditKeys.generate()
    log = SqliteAuditLog(tmp_path / "audit.sqlite", keys)
    _append(log, 1)
    (rec,) = log.records()
    doc = {**rec.__dict__, "fields": list(rec.fields), "mac_alg": "hmac-sha256"}
    body = {k: doc[k] for k in ("seq", "ts", "actor", "role", "action", "customer_token", "fields", "outcome",
                                "details", "prev_hash", "mac_alg")}  # fmt: skip
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert rec.hash == hmac.new(keys.mac_key, canonical, hashlib.sha256).hexdigest()


# -- the command -------------------------------------------------------------------------------------------
def test_cli_verify_names_the_first_bad_record_on_one_line(isolated_home):
    from app.cli import app
    from cdp.backends import Backends

    b = Backends()
    for i in range(4):
        _append(b.audit, i)
    ok = CliRunner().invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "audit log intact: 4 records" in ok.output
    conn = sqlite3.connect(b.settings.state_dir / "audit.sqlite", isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE seq >= 3")
    conn.close()
    bad = CliRunner().invoke(app, ["audit", "verify"])
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert bad.exit_code == 1
    assert len(lines) == 1 and lines[0].startswith("audit log broken at record 3:"), bad.output
    assert (b.settings.state_dir / "audit-checkpoints.jsonl").exists()


# -- the checkpoint store contract, local file and S3 (moto) -----------------------------------------------
BUCKET = "cdp-audit-checkpoints-test"


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalCheckpointFile(tmp_path / "cps.jsonl")
        return
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield S3Checkpoints(s3, BUCKET)


def test_checkpoint_store_starts_empty_and_returns_the_newest(store):
    key = secrets.token_bytes(32)
    assert store.latest() is None
    written = [sign_checkpoint(key, n, f"{n:064x}") for n in (0, 1, 2, 10)]
    for cp in written:
        store.append(cp)
        assert store.latest() == cp
    assert store.latest().signature_ok(key) and not store.latest().signature_ok(secrets.token_bytes(32))


def test_checkpoint_signatures_cover_every_field():
    key = secrets.token_bytes(32)
    cp = sign_checkpoint(key, 5, "ab" * 32)
    for changed in ({"count": 6}, {"head": "cd" * 32}, {"ts": "2020-01-01T00:00:00+00:00"}):
        assert not Checkpoint(**{**cp.__dict__, **changed}).signature_ok(key)


def test_s3_checkpoints_are_written_once():
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        store = S3Checkpoints(s3, BUCKET)
        key = secrets.token_bytes(32)
        store.append(sign_checkpoint(key, 3, "ab" * 32))
        with pytest.raises(AuditIntegrityError, match="exists already"):
            store.append(sign_checkpoint(key, 3, "cd" * 32))
        assert store.latest().head == "ab" * 32


def test_local_checkpoint_file_is_private_and_survives_a_torn_write(tmp_path):
    store = LocalCheckpointFile(tmp_path / "cps.jsonl")
    key = secrets.token_bytes(32)
    store.append(sign_checkpoint(key, 1, "ab" * 32))
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    with open(store.path, "a") as f:
        f.write('{"v":1,"count":2,"he')  # a write cut by a crash
    assert store.latest().count == 1
    store.append(sign_checkpoint(key, 2, "cd" * 32))
    assert store.latest().count == 2 and store.latest().signature_ok(key)


def test_local_checkpoint_file_reports_an_unreadable_last_line(tmp_path):
    store = LocalCheckpointFile(tmp_path / "cps.jsonl")
    store.path.write_text("not json\n")
    with pytest.raises(CheckpointUnreadable):
        store.latest()


def test_backends_pick_the_checkpoint_store(monkeypatch):
    from cdp.backends import Backends
    from cdp.settings import Settings

    assert isinstance(Backends(Settings()).audit_checkpoints, LocalCheckpointFile)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    aws = Backends(Settings(backend="aws")).audit_checkpoints
    assert isinstance(aws, S3Checkpoints) and aws.bucket == Settings().audit_checkpoint_bucket
