"""Access-checked decryption and the MAC-chained audit log (tampering caught by `verify`)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from cdp.security.audit.keys import load_audit_keys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import AccessDenied
from cdp.security.keys.local import LocalKeyring
from cdp.security.protector import Protector
from cdp.security.tokens import load_or_create_token_key
from cdp.security.vault import Caller, PiiVault

FRAUD_OPS = Caller("analyst-1", "fraud-ops")
MARKETING = Caller("marketer-1", "marketing")
SCIENTIST = Caller("ds-1", "data-scientist")
DPO = Caller("dpo-1", "privacy-officer")
CLEAR = {
    "person": "Jane Doe",
    "email": "jane.doe@example.com",
    "address": "123 Oak Lane",
    "apartment": "4B",
    "card_number": "4000123412341234",
    "expires": "2022-12",
}


@pytest.fixture
def world(tmp_path):
    keys = LocalKeyring(tmp_path / "keyring.json")
    store = SqliteDataKeyStore(tmp_path / "data_keys.sqlite")
    audit = SqliteAuditLog(tmp_path / "audit.sqlite", load_audit_keys(keys, store))
    protector = Protector(load_or_create_token_key(keys, store), keys, store)
    token = protector.user_token(42)
    protected = {f: protector.encrypt_field(token, f, v) for f, v in CLEAR.items()}
    return PiiVault(keys, store, audit), audit, token, protected, tmp_path / "audit.sqlite"


def _protector_parts(world):
    vault = world[0]
    return load_or_create_token_key(vault.keys, vault.store), vault.keys, vault.store


def _pick(protected, *names):
    return {n: protected[n] for n in names}


def test_data_scientist_is_refused_and_audited(world):
    vault, audit, token, protected, _ = world
    with pytest.raises(AccessDenied, match="data-scientist"):
        vault.reveal(SCIENTIST, token, _pick(protected, "person"), "model-debugging")
    with pytest.raises(AccessDenied):
        vault.reveal(SCIENTIST, token, {}, "model-debugging")
    recs = list(audit.records())
    assert [(r.actor, r.role, r.action, r.outcome) for r in recs] == [
        ("ds-1", "data-scientist", "reveal", "denied")
    ] * 2
    assert recs[0].customer_token == token and recs[0].fields == ("person",)
    assert recs[0].details["purpose"] == "model-debugging"


def test_marketing_gets_name_and_email_only(world):
    vault, audit, token, protected, _ = world
    got = vault.reveal(MARKETING, token, _pick(protected, "person", "email"), "marketing-email")
    assert got == {"person": "Jane Doe", "email": "jane.doe@example.com"}
    for extra in ("address", "card_number", "expires"):
        with pytest.raises(AccessDenied, match=extra):  # all-or-nothing: nothing is returned
            vault.reveal(MARKETING, token, _pick(protected, "person", extra), "marketing-email")
    outcomes = [(r.outcome, r.fields) for r in audit.records()]
    assert outcomes[0] == ("allowed", ("email", "person"))
    assert [o for o, _ in outcomes[1:]] == ["denied"] * 3


def test_fraud_ops_gets_contact_and_card_context_but_never_the_pan(world):
    vault, _, token, protected, _ = world
    fields = ("person", "email", "address", "apartment", "expires")
    got = vault.reveal(FRAUD_OPS, token, _pick(protected, *fields), "fraud-alert")
    assert got == {f: CLEAR[f] for f in fields}
    with pytest.raises(AccessDenied, match="card_number"):
        vault.reveal(FRAUD_OPS, token, _pick(protected, "card_number"), "fraud-alert")


def test_unknown_role_and_malformed_requests_are_refused_and_audited(world):
    vault, audit, token, protected, _ = world
    with pytest.raises(AccessDenied):
        vault.reveal(Caller("x", "intern"), token, _pick(protected, "person"), "fraud-alert")
    with pytest.raises(ValueError, match="purpose"):
        vault.reveal(FRAUD_OPS, token, _pick(protected, "person"), "call Jane Doe about her card")
    with pytest.raises(ValueError, match="customer token"):
        vault.reveal(FRAUD_OPS, "Jane Doe", _pick(protected, "person"), "fraud-alert")
    recs = list(audit.records())
    assert [r.outcome for r in recs] == ["denied", "rejected", "rejected"]
    assert recs[2].customer_token == "invalid"
    assert audit.verify().ok


def test_a_batch_of_reveals_audits_one_record_per_request_in_one_checkpoint(world):
    vault, audit, token, protected, _ = world
    other = Protector(*_protector_parts(world)).user_token(43)
    out = vault.reveal_many(
        MARKETING,
        [(token, _pick(protected, "person")), (token, _pick(protected, "address")), (other, {}),
         ("Jane Doe", _pick(protected, "person"))],
        "marketing-email",
    )  # fmt: skip
    assert out[0] == {"person": "Jane Doe"}
    assert isinstance(out[1], AccessDenied) and isinstance(out[2], AccessDenied)
    assert isinstance(out[3], ValueError)
    recs = list(audit.records())
    assert [r.outcome for r in recs] == ["allowed", "denied", "denied", "rejected"]
    assert [r.customer_token for r in recs] == [token, token, other, "invalid"]
    assert all(CLEAR["person"] not in json.dumps(r.details) for r in recs)
    assert audit.verify().ok and audit.checkpoints.latest().count == 4
    counts = [json.loads(line)["count"] for line in audit.checkpoints.path.read_text().splitlines()]
    assert counts == [0, 4]  # the sealed empty log, then one checkpoint for the whole batch


def test_forget_is_role_checked_and_audited(world):
    vault, audit, token, protected, _ = world
    with pytest.raises(AccessDenied):
        vault.forget(token, MARKETING)
    assert (
        vault.reveal(MARKETING, token, _pick(protected, "email"), "marketing-email")["email"]
        == CLEAR["email"]
    )
    assert vault.forget(token, DPO) is True
    recs = [(r.action, r.role, r.outcome) for r in audit.records()]
    assert recs == [
        ("forget", "marketing", "denied"),
        ("reveal", "marketing", "allowed"),
        ("forget", "privacy-officer", "allowed"),
    ]
    with pytest.raises(NotImplementedError):
        vault.export(token, DPO)


def test_audit_log_holds_no_pii(world):
    vault, audit, token, protected, path = world
    vault.reveal(FRAUD_OPS, token, _pick(protected, "person", "email", "address"), "fraud-alert")
    with pytest.raises(AccessDenied):
        vault.reveal(SCIENTIST, token, _pick(protected, "person"), "model-debugging")
    vault.forget(token, DPO)
    raw = path.read_bytes() + b"".join(p.read_bytes() for p in path.parent.glob("audit.sqlite-*"))
    assert token.encode() in raw  # the scan sees the log's content
    assert not [v for v in CLEAR.values() if v.encode() in raw]


# -- hash chain ----------------------------------------------------------------------------------------
def _filled(world, n: int = 6):
    vault, audit, token, protected, path = world
    for i in range(n):
        caller = (MARKETING, SCIENTIST)[i % 2]
        try:
            vault.reveal(caller, token, _pick(protected, "person"), "marketing-email")
        except AccessDenied:
            pass
    result = audit.verify()
    assert result.ok and result.records == n and result.first_broken_seq is None
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_log_no_update")  # an attacker with file access bypasses the guards
    conn.execute("DROP TRIGGER audit_log_no_delete")
    return audit, conn


def test_the_log_refuses_updates_and_deletes(world):
    vault, audit, token, protected, path = world
    vault.forget(token, DPO)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET outcome = 'denied'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log")


def test_verify_catches_an_altered_record(world):
    audit, conn = _filled(world)
    conn.execute("UPDATE audit_log SET outcome = 'allowed' WHERE seq = 4")
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 4) and "altered" in result.reason


def test_verify_catches_an_altered_field_list(world):
    audit, conn = _filled(world)
    conn.execute("UPDATE audit_log SET fields = ? WHERE seq = 2", (json.dumps(["email"]),))
    assert audit.verify().first_broken_seq == 2


def test_verify_catches_a_deleted_record(world):
    audit, conn = _filled(world)
    conn.execute("DELETE FROM audit_log WHERE seq = 3")
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 4) and "missing" in result.reason


def test_verify_catches_a_deleted_and_renumbered_record(world):
    audit, conn = _filled(world)
    conn.execute("DELETE FROM audit_log WHERE seq = 3")
    conn.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 3")
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)


def test_verify_catches_an_inserted_record(world):
    audit, conn = _filled(world)
    row = conn.execute("SELECT * FROM audit_log WHERE seq = 2").fetchone()
    conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", row)  # replayed copy
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2) and "seq" in result.reason


def test_verify_catches_reordered_records(world):
    audit, conn = _filled(world)
    conn.execute("UPDATE audit_log SET seq = CASE seq WHEN 2 THEN 5 WHEN 5 THEN 2 END WHERE seq IN (2, 5)")
    result = audit.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2)


def test_verify_catches_a_deleted_last_record(world):
    audit, conn = _filled(world)
    head = audit.verify().head_hash
    conn.execute("DELETE FROM audit_log WHERE seq = 6")  # tail deletion: the chain alone stays consistent
    result = audit.verify()
    assert result.head_hash != head
    assert (result.ok, result.first_broken_seq) == (False, 6) and "signed checkpoint" in result.reason
