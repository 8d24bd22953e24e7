"""Contract of the API-key store port, run against both adapters: SQLite and DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import boto3
import pytest
from moto import mock_aws

from cdp.apikeys.dynamodb import DynamoDbApiKeyStore
from cdp.apikeys.keys import secret_hash
from cdp.apikeys.port import ApiKeyError, ApiKeyRecord, ApiKeyStore, UnknownApiKeyError
from cdp.apikeys.sqlite import SqliteApiKeyStore
from tests.contract.moto_env import REGION, use_fake_aws_credentials


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[ApiKeyStore]:
    if request.param == "sqlite":
        yield SqliteApiKeyStore(tmp_path / "keys.sqlite3")
        return
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        dynamo = DynamoDbApiKeyStore(boto3.client("dynamodb", region_name=REGION), "cdp-api-keys")
        dynamo.create_table()
        yield dynamo


def record(key_id: str, when: datetime, scopes: tuple[str, ...] = ("fraud:score",)) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, secret_hash("s" * 43), scopes, f"label {key_id[0]}", when)


def test_adapter_satisfies_the_port(store: ApiKeyStore) -> None:
    assert isinstance(store, ApiKeyStore)
    assert store.list() == []


def test_add_get_list_revoke(store: ApiKeyStore) -> None:
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
    assert store.get("a" * 16) == revoked
    assert store.get("b" * 16).active


def test_every_field_round_trips(store: ApiKeyStore) -> None:
    scopes = ("customers:read", "fraud:score", "invocations", "models:admin", "models:read")
    full = ApiKeyRecord(
        "d" * 16, secret_hash("t" * 43), scopes, "ops team, batch scorer", datetime(2024, 5, 6, 7, 8, 9)
    )
    store.add(full)
    assert store.get(full.key_id) == full
    assert store.list() == [full]


def test_duplicate_ids_and_unknown_revocations_fail(store: ApiKeyStore) -> None:
    store.add(record("a" * 16, datetime(2024, 1, 1)))
    with pytest.raises(ApiKeyError):
        store.add(record("a" * 16, datetime(2024, 1, 5)))
    assert store.get("a" * 16).created_at == datetime(2024, 1, 1)  # the first record is kept
    with pytest.raises(UnknownApiKeyError):
        store.revoke("f" * 16, datetime(2024, 1, 1))
    assert store.get("f" * 16) is None  # a failed revocation creates nothing


def test_many_keys_list_oldest_first(store: ApiKeyStore) -> None:
    ids = [f"{n:016x}" for n in range(30)]
    for n, key_id in reversed(list(enumerate(ids))):
        store.add(record(key_id, datetime(2024, 1, 1 + n)))
    assert [r.key_id for r in store.list()] == ids


def test_expiry_and_rotation_fields_round_trip(store: ApiKeyStore) -> None:
    full = ApiKeyRecord(
        "e" * 16, secret_hash("u" * 43), ("fraud:score",), "expiring", datetime(2024, 1, 1),
        expires_at=datetime(2024, 4, 1), previous_secret_sha256=secret_hash("v" * 43),
        previous_valid_until=datetime(2024, 1, 2),
    )  # fmt: skip
    store.add(full)
    assert store.get(full.key_id) == full
    assert store.list() == [full]


def test_rotate_keeps_the_old_secret_for_the_overlap_only(store: ApiKeyStore) -> None:
    old, new = secret_hash("o" * 43), secret_hash("n" * 43)
    store.add(ApiKeyRecord("a" * 16, old, ("fraud:score",), "rotated", datetime(2024, 1, 1),
                           expires_at=datetime(2024, 2, 1)))  # fmt: skip
    rotated = store.rotate("a" * 16, new, datetime(2024, 6, 1), datetime(2024, 1, 11))
    assert store.get("a" * 16) == rotated
    assert rotated.secret_sha256 == new and rotated.previous_secret_sha256 == old
    assert rotated.expires_at == datetime(2024, 6, 1) and rotated.scopes == ("fraud:score",)
    assert rotated.secret_hashes(datetime(2024, 1, 10)) == (new, old)  # during the overlap: both
    assert rotated.secret_hashes(datetime(2024, 1, 11)) == (new,)  # after it: only the new secret
    assert not rotated.expired(datetime(2024, 5, 31)) and rotated.expired(datetime(2024, 6, 1))
    again = store.rotate("a" * 16, secret_hash("m" * 43), None, datetime(2024, 1, 20))
    assert again.previous_secret_sha256 == new and again.expires_at is None  # only one previous secret


def test_rotating_unknown_or_revoked_keys_fails(store: ApiKeyStore) -> None:
    with pytest.raises(UnknownApiKeyError):
        store.rotate("f" * 16, secret_hash("n" * 43), None, datetime(2024, 1, 2))
    assert store.get("f" * 16) is None
    store.add(record("a" * 16, datetime(2024, 1, 1)))
    store.revoke("a" * 16, datetime(2024, 1, 2))
    with pytest.raises(ApiKeyError):
        store.rotate("a" * 16, secret_hash("n" * 43), None, datetime(2024, 1, 3))
    assert store.get("a" * 16).secret_sha256 == secret_hash("s" * 43)  # unchanged
