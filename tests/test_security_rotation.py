"""Master-key rotation: every live data key re-wrapped, readable throughout, resumable, audited."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from moto import mock_aws

from cdp.security.audit.keys import load_audit_keys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.datakeys.dynamodb import DynamoDataKeyStore, create_table
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import KeyAccessError, KeyRetirementUnsupported
from cdp.security.fieldcrypto import data_key_context
from cdp.security.keycontexts import entry_context
from cdp.security.keys.kms import KmsKeyManager, create_key
from cdp.security.keys.local import LocalKeyring
from cdp.security.protector import Protector
from cdp.security.rotation import ROTATE_ACTION, RotationIncomplete, rotate_master_key
from cdp.security.tokens import TOKEN_KEY_ID, load_or_create_token_key
from cdp.security.vault import Caller, PiiVault
from cdp.settings import Settings

USERS = range(1, 9)
RESERVED_ENTRIES = 4  # token key, audit MAC and checkpoint keys, the extra entry below (+2 per customer:
#                       their data key and their token secret)
AUDIT_CHAIN_ID = "sys_audit_chain"  # a reserved entry another part of the platform might add
AUDIT_CHAIN_CONTEXT = {"use": "audit-chain", "id": AUDIT_CHAIN_ID}


class Platform:
    """Keys, data-key store, audit log and some protected customers, as the platform leaves them."""

    def __init__(self, keys, store, tmp_path) -> None:
        self.keys, self.store = keys, store
        self.audit = SqliteAuditLog(tmp_path / "audit.sqlite", load_audit_keys(keys, store))
        self.journal = tmp_path / "key_rotation.json"
        self.protector = Protector(load_or_create_token_key(keys, store), keys, store)
        self.emails = {}
        for user in USERS:
            token = self.protector.user_token(user)
            self.emails[token] = self.protector.encrypt_field(token, "email", f"user{user}@example.com")
        extra = keys.generate_data_key(AUDIT_CHAIN_CONTEXT)
        store.put_if_absent(AUDIT_CHAIN_ID, extra.wrapped, extra.key_version, context=AUDIT_CHAIN_CONTEXT)
        self.plaintexts = {
            e.entry_id: keys.decrypt_data_key(e.wrapped, entry_context(e)) for e in store.entries()
        }

    def rotate(self, **kw):
        return rotate_master_key(
            self.keys, self.store, self.audit, self.journal, actor="tester", role="key-admin", **kw
        )

    def readable(self) -> dict[str, bytes]:
        """Every live entry unwrapped with a fresh view of the keys (as a reader elsewhere would)."""
        return {
            e.entry_id: self.keys.decrypt_data_key(e.wrapped, entry_context(e)) for e in self.store.entries()
        }

    def reveal_all(self) -> dict[str, str | None]:
        vault = PiiVault(self.keys, self.store, self.audit)
        caller = Caller(id="analyst", role="marketing")
        return {
            t: vault.reveal(caller, t, {"email": c}, purpose="campaign")["email"]
            for t, c in self.emails.items()
        }

    def rotation_records(self):
        return [r for r in self.audit.records() if r.action == ROTATE_ACTION]


@pytest.fixture
def local(tmp_path):
    keys = LocalKeyring(tmp_path / "keyring.json")
    return Platform(keys, SqliteDataKeyStore(tmp_path / "data_keys.sqlite"), tmp_path)


def test_rotation_rewraps_every_entry_and_old_ciphertexts_stay_readable(local):
    emails_before = local.reveal_all()
    r = local.rotate()
    assert (r.previous, r.target, r.resumed) == ("v1", "v2", False)
    assert r.entries == 2 * len(USERS) + RESERVED_ENTRIES and r.rewrapped == r.entries and r.complete
    assert {e.key_version for e in local.store.entries()} == {"v2"}
    assert {LocalKeyring.version_of(e.wrapped) for e in local.store.entries()} == {"v2"}
    assert local.readable() == local.plaintexts  # same data keys, new wrapping
    assert local.reveal_all() == emails_before  # ciphertexts written before the rotation still open
    # every entry now carries its context, including the reserved ones
    contexts = {e.entry_id: e.context for e in local.store.entries()}
    assert contexts[AUDIT_CHAIN_ID] == AUDIT_CHAIN_CONTEXT
    assert contexts[TOKEN_KEY_ID]["use"] == "token-key"
    assert all(contexts[t] == data_key_context(t) for t in local.emails)


def test_rotation_is_audited_once_with_counts_and_no_key_material(local):
    local.rotate()
    [record] = local.rotation_records()
    assert record.outcome == "allowed" and record.actor == "tester"
    assert record.details["rewrapped"] == 2 * len(USERS) + RESERVED_ENTRIES
    assert record.details["target"] == "v2"
    text = json.dumps(record.details) + repr(record)
    for e in local.store.entries():
        assert e.wrapped.hex() not in text and local.plaintexts[e.entry_id].hex() not in text
    assert local.audit.verify().ok


def test_retire_old_deletes_the_old_master_version_once_nothing_names_it(local):
    old = next(local.store.entries())
    r = local.rotate(retire_old=True)
    assert r.retired == ("v1",) and LocalKeyring(local.keys.path).versions == ("v2",)
    assert local.readable() == local.plaintexts and len(local.reveal_all()) == len(USERS)
    with pytest.raises(KeyAccessError):  # a copy of the store from before (a backup) no longer opens
        local.keys.decrypt_data_key(old.wrapped, entry_context(old))


def test_a_crash_half_way_leaves_everything_readable_and_a_rerun_finishes(local):
    def crash(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt  # like a kill: not caught as an error of the rotation

    with pytest.raises(KeyboardInterrupt):
        local.rotate(progress=crash)
    versions = [e.key_version for e in local.store.entries()]
    assert versions.count("v2") == 3 and versions.count("v1") == len(versions) - 3
    assert local.readable() == local.plaintexts and len(local.reveal_all()) == len(USERS)
    r = local.rotate()
    assert r.resumed and (r.previous, r.target) == ("v1", "v2")  # the same rotation, not another one
    assert r.rewrapped == len(versions) - 3 and r.already_current == 3 and r.complete
    assert local.keys.versions == ("v1", "v2") and local.readable() == local.plaintexts
    assert local.rotate().target == "v3"  # finished: the next run is a new rotation


def test_a_failure_half_way_is_audited_as_failed(local, monkeypatch):
    calls = []

    def broken(wrapped, context):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk gone")
        return LocalKeyring.rewrap(local.keys, wrapped, context)

    monkeypatch.setattr(local.keys, "rewrap", broken)
    with pytest.raises(OSError):
        local.rotate()
    [record] = local.rotation_records()
    assert record.outcome == "failed" and record.details["error"] == "OSError"
    assert local.readable() == local.plaintexts


def test_readers_never_fail_while_the_rotation_runs(local):
    stop, errors, reads = threading.Event(), [], [0]
    reader_keys = LocalKeyring(local.keys.path)  # another process's view of the keyring
    reader_store = SqliteDataKeyStore(local.store.path)

    def read() -> None:
        while not stop.is_set():
            try:
                for e in reader_store.entries():
                    assert (
                        reader_keys.decrypt_data_key(e.wrapped, entry_context(e))
                        == local.plaintexts[e.entry_id]
                    )
                    reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(5):
            local.rotate()
    finally:
        stop.set()
        thread.join()
    assert errors == [] and reads[0] > 0
    assert {e.key_version for e in local.store.entries()} == {"v6"}


def test_an_entry_erased_during_the_rotation_stays_erased(local, monkeypatch):
    victim = next(t for t in local.emails)
    real = local.keys.rewrap

    def erase_then_rewrap(wrapped, context):
        if context.get("customer") == victim:
            local.store.delete(victim)  # the customer is erased between our read and our swap
        return real(wrapped, context)

    monkeypatch.setattr(local.keys, "rewrap", erase_then_rewrap)
    r = local.rotate()
    assert r.erased_meanwhile == 1 and r.complete
    assert local.store.get(victim) is None and local.store.is_erased(victim)


def test_an_entry_without_a_known_context_blocks_retirement(local):
    stray = local.keys.generate_data_key({"use": "something-else"})
    local.store.put("sys_unknown", stray.wrapped, stray.key_version)  # no context stored, no rule
    r = local.rotate()
    assert not r.complete and r.unknown_context == 1 and r.remaining == 1 and "sys_unknown" in r.problem_ids
    assert local.rotation_records()[-1].outcome == "failed"
    with pytest.raises(RotationIncomplete, match="1 live data keys"):
        local.rotate(rotate=False, retire_old=True)
    assert local.keys.versions == ("v1", "v2")  # nothing retired
    assert local.keys.decrypt_data_key(stray.wrapped, {"use": "something-else"}) == stray.plaintext


def test_cli_rotates_and_reports(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app
    from cdp.backends import Backends
    from cdp.settings import get_settings
    from tests.identity_support import issue

    b = Backends()
    b.protector.encrypt_field(b.protector.user_token(1), "email", "a@example.com")
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(issue(b, "root", "admin")))
    get_settings.cache_clear()
    before = len(list(b.data_keys.entries()))  # the customer's key and the platform's own keys
    runner = CliRunner()
    result = runner.invoke(app, ["crypto", "rotate-master-key", "--retire-old"])
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    assert "v1 -> v2" in line and f"{before} re-wrapped" in line and "retired: v1" in line
    status = runner.invoke(app, ["crypto", "status"])
    after = len(list(Backends().data_keys.entries()))  # keys made since (the rotation's audit keys) are v2
    assert "current master version: v2" in status.output and f"v2: {after} data keys" in status.output
    assert "v1:" not in status.output


# -- AWS: KMS key-material rotation + ReEncrypt of every item (moto) ------------------------------------
def test_kms_rotation_reencrypts_every_item(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        kms = boto3.client("kms", region_name=settings.aws_region)
        ddb = boto3.client("dynamodb", region_name=settings.aws_region)
        create_key(kms, alias="alias/cdp-pii")
        create_table(ddb, "cdp-data-keys")
        platform = Platform(
            KmsKeyManager(kms, "alias/cdp-pii"), DynamoDataKeyStore(ddb, "cdp-data-keys"), tmp_path
        )
        before = {e.entry_id: e.wrapped for e in platform.store.entries()}
        emails = platform.reveal_all()
        r = platform.rotate()
        assert r.complete and r.rewrapped == len(before) and r.target.endswith("#r1")
        after = {e.entry_id: e for e in platform.store.entries()}
        assert all(after[i].wrapped != w and after[i].key_version == r.target for i, w in before.items())
        assert platform.readable() == platform.plaintexts and platform.reveal_all() == emails
        with pytest.raises(KeyRetirementUnsupported):
            platform.rotate(rotate=False, retire_old=True)
        assert platform.rotation_records()[-1].outcome == "failed"
