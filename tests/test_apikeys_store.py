"""The API-key commands: hashed storage, audit records, scope checks (the store's own contract, on both
adapters, is tests/contract/test_apikeys_contract.py)."""

from __future__ import annotations

import pytest

from cdp.apikeys.commands import cli_create, cli_list, cli_revoke, create_key, list_keys, revoke_key
from cdp.apikeys.keys import parse_key, secret_matches
from cdp.apikeys.port import InvalidApiKeyRequestError
from cdp.apikeys.sqlite import SqliteApiKeyStore


def test_created_keys_are_stored_hashed_and_audited(tmp_path):
    from cdp.security.audit.keys import AuditKeys
    from cdp.security.audit.sqlite import SqliteAuditLog

    store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3", AuditKeys.generate())
    key, rec = create_key(store, "fraud team", ["models:read", "fraud:score", "fraud:score"], audit=audit)
    parsed = parse_key(key)
    assert parsed is not None and parsed.key_id == rec.key_id
    assert rec.scopes == ("fraud:score", "models:read")  # deduplicated, canonical order
    assert secret_matches(parsed.secret, store.get(rec.key_id).secret_sha256)
    assert not secret_matches(parsed.secret[:-1] + "x", rec.secret_sha256)
    raw = (tmp_path / "keys.sqlite3").read_bytes()
    assert parsed.secret.encode() not in raw and key.encode() not in raw
    listed = list_keys(store)
    assert listed[0]["key_id"] == rec.key_id and "secret_sha256" not in listed[0]
    revoke_key(store, rec.key_id, audit=audit)
    actions = [(r.action, r.details["key_id"]) for r in audit.records()]
    assert actions == [("api-key-create", rec.key_id), ("api-key-revoke", rec.key_id)]
    assert all(key not in str(r.details) and parsed.secret not in str(r.details) for r in audit.records())
    assert audit.verify().ok


@pytest.mark.parametrize(
    ("label", "scopes"),
    [
        ("ok", []),
        ("ok", ["admin:everything"]),
        ("", ["fraud:score"]),
        ("x" * 65, ["fraud:score"]),
        ("a@b.com", ["fraud:score"]),
    ],
)
def test_bad_create_requests_are_refused(tmp_path, label, scopes):
    store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    with pytest.raises(InvalidApiKeyRequestError):
        create_key(store, label, scopes)
    assert store.list() == []


def test_cli_functions_use_the_platform_store(isolated_home):
    from cdp.settings import get_settings

    created = cli_create("ops", ["models:read"])
    assert created["api_key"].startswith("cdpk_") and created["scopes"] == ["models:read"]
    assert [k["key_id"] for k in cli_list()] == [created["key_id"]]
    assert cli_revoke(created["key_id"])["revoked_at"] is not None
    assert (get_settings().state_dir / "apikeys.sqlite3").is_file()


def test_keys_expire_after_the_duration_and_rotation_keeps_the_old_secret_for_the_overlap(tmp_path):
    from datetime import timedelta

    from cdp.apikeys.commands import parse_duration, rotate_key
    from cdp.security.audit.keys import AuditKeys
    from cdp.security.audit.sqlite import SqliteAuditLog

    store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    audit = SqliteAuditLog(tmp_path / "audit.sqlite3", AuditKeys.generate())
    key, rec = create_key(store, "ops", ["fraud:score"], expires_in=parse_duration("90d"))
    assert rec.expires_at - rec.created_at == timedelta(days=90)
    new_key, rotated = rotate_key(
        store, rec.key_id, overlap=timedelta(hours=24), expires_in=timedelta(days=30), audit=audit
    )
    old, new = parse_key(key), parse_key(new_key)
    assert new.key_id == old.key_id and new.secret != old.secret
    assert rotated.previous_valid_until - rotated.expires_at == timedelta(hours=24) - timedelta(days=30)
    now = rotated.previous_valid_until - timedelta(hours=1)
    accepted = [secret_matches(k.secret, h) for k in (old, new) for h in rotated.secret_hashes(now)]
    assert accepted.count(True) == 2
    later = rotated.previous_valid_until
    assert not any(secret_matches(old.secret, h) for h in rotated.secret_hashes(later))
    assert any(secret_matches(new.secret, h) for h in rotated.secret_hashes(later))
    [entry] = audit.records()
    assert entry.action == "api-key-rotate" and new_key not in str(entry.details)
    assert new.secret.encode() not in (tmp_path / "keys.sqlite3").read_bytes()


@pytest.mark.parametrize("text", ["90", "0d", "-1d", "1w", "99999999d", "4000d", ""])
def test_bad_durations_are_refused(text):
    from cdp.apikeys.commands import parse_duration

    with pytest.raises(InvalidApiKeyRequestError):
        parse_duration(text)


def test_cli_create_takes_the_default_expiry_from_the_settings_and_rotate_works(isolated_home, monkeypatch):
    from datetime import datetime, timedelta

    from cdp.apikeys.commands import cli_rotate
    from cdp.settings import get_settings

    monkeypatch.setenv("CDP_API_KEY_EXPIRY_DAYS", "10")
    get_settings.cache_clear()
    created = cli_create("ops", ["models:read"])
    span = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(created["created_at"])
    assert span == timedelta(days=10)
    rotated = cli_rotate(created["key_id"], expires_in="2d")
    assert rotated["api_key"] != created["api_key"] and rotated["key_id"] == created["key_id"]
    assert rotated["previous_valid_until"] is not None and "secret_sha256" not in rotated
    cli_revoke(created["key_id"])
    from cdp.apikeys.port import ApiKeyError

    with pytest.raises(ApiKeyError):
        cli_rotate(created["key_id"])
    get_settings.cache_clear()
