"""The API-key store port: one contract run against the SQLite adapter and the DynamoDB adapter (moto),
plus the key commands (hashed storage, audit records, scope checks)."""

from __future__ import annotations

from datetime import datetime

import pytest

from cdp.apikeys.commands import cli_create, cli_list, cli_revoke, create_key, list_keys, revoke_key
from cdp.apikeys.keys import parse_key, secret_hash, secret_matches
from cdp.apikeys.port import ApiKeyError, ApiKeyRecord, InvalidApiKeyRequestError, UnknownApiKeyError
from cdp.apikeys.sqlite import SqliteApiKeyStore


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path, monkeypatch):  # noqa: ANN201
    if request.param == "sqlite":
        yield SqliteApiKeyStore(tmp_path / "keys.sqlite3")
        return
    import boto3
    from moto import mock_aws

    from cdp.apikeys.dynamodb import DynamoDbApiKeyStore

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        dynamo = DynamoDbApiKeyStore(boto3.client("dynamodb", region_name="eu-west-1"), "cdp-api-keys")
        dynamo.create_table()
        yield dynamo


def record(key_id: str, when: datetime, scopes=("fraud:score",)) -> ApiKeyRecord:  # noqa: ANN001
    return ApiKeyRecord(key_id, secret_hash("s" * 43), tuple(scopes), f"label {key_id}", when)


def test_add_get_list_revoke(store):
    a, b = record("a" * 16, datetime(2024, 1, 1)), record("b" * 16, datetime(2024, 1, 2), ("models:read",))
    store.add(b)
    store.add(a)
    assert store.get("a" * 16) == a
    assert store.get("c" * 16) is None
    assert [r.key_id for r in store.list()] == ["a" * 16, "b" * 16]  # oldest first
    revoked = store.revoke("a" * 16, datetime(2024, 2, 1))
    assert revoked.revoked_at == datetime(2024, 2, 1) and not revoked.active
    again = store.revoke("a" * 16, datetime(2024, 3, 1))
    assert again.revoked_at == datetime(2024, 2, 1)  # the first revocation time stays
    assert store.get("b" * 16).active


def test_duplicate_ids_and_unknown_revocations_fail(store):
    store.add(record("a" * 16, datetime(2024, 1, 1)))
    with pytest.raises(ApiKeyError):
        store.add(record("a" * 16, datetime(2024, 1, 5)))
    with pytest.raises(UnknownApiKeyError):
        store.revoke("f" * 16, datetime(2024, 1, 1))


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
