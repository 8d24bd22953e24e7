"""Contract tests of the data-key store port, run against SQLite and DynamoDB (moto)."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from cdp.security.datakeys.dynamodb import DynamoDataKeyStore, create_table
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import CustomerErased
from cdp.settings import Settings

A, B, C = "usr_" + "a" * 26, "usr_" + "b" * 26, "usr_" + "c" * 26


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request, tmp_path, monkeypatch) -> DataKeyStore:
    if request.param == "sqlite":
        yield SqliteDataKeyStore(tmp_path / "state" / "data_keys.sqlite")
        return
    settings = Settings(home=tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name=settings.aws_region)
        table = f"{settings.dynamodb_table_prefix}data-keys"
        create_table(client, table)
        create_table(client, table)  # idempotent
        yield DynamoDataKeyStore(client, table)


def test_is_a_data_key_store(store):
    assert isinstance(store, DataKeyStore)


def test_put_get_delete(store):
    assert store.get(A) is None
    store.put(A, b"\x00wrapped-a", "v1")
    store.put(B, b"wrapped-b", "v1")
    assert store.get(A) == b"\x00wrapped-a"
    store.put(A, b"rewrapped-a", "v2")  # replace (e.g. re-wrapped after rotation)
    assert store.get(A) == b"rewrapped-a"
    assert sorted(store.tokens()) == [A, B]
    assert store.delete(A) is True
    assert store.get(A) is None and store.is_erased(A)
    assert store.delete(A) is False  # already gone
    assert store.get(B) == b"wrapped-b" and not store.is_erased(B)
    assert list(store.tokens()) == [B]


def test_put_if_absent_keeps_the_first_key(store):
    assert store.put_if_absent(A, b"first", "v1") is True
    assert store.put_if_absent(A, b"second", "v1") is False
    assert store.get(A) == b"first"


def test_an_erased_customer_never_gets_a_key_again(store):
    store.put(A, b"k", "v1")
    store.delete(A)
    assert store.put_if_absent(A, b"new", "v1") is False
    with pytest.raises(CustomerErased, match=A):
        store.put(A, b"new", "v1")
    assert store.get(A) is None
    # erasing a customer who never had a key also blocks future keys
    assert store.delete(C) is False
    assert store.is_erased(C) and store.put_if_absent(C, b"k", "v1") is False


def test_sqlite_first_writer_wins_across_threads(tmp_path):
    path = tmp_path / "keys.sqlite"
    stores = [SqliteDataKeyStore(path) for _ in range(4)]
    wins: dict[int, bool] = {}

    def race(i: int) -> None:
        wins[i] = stores[i].put_if_absent(A, f"key-{i}".encode(), "v1")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins.values()) == [False, False, False, True]
    (winner,) = (i for i, won in wins.items() if won)
    assert all(s.get(A) == f"key-{winner}".encode() for s in stores)


def test_from_settings_builds_both_adapters(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path)
    local = SqliteDataKeyStore.from_settings(settings)
    local.put(A, b"k", "v1")
    assert (tmp_path / "state" / "data_keys.sqlite").exists() and local.get(A) == b"k"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        remote = DynamoDataKeyStore.from_settings(settings)
        assert remote.table_name == "cdp-data-keys"
        create_table(remote.client, remote.table_name)
        remote.put(A, b"k", "v1")
        assert remote.get(A) == b"k"


# -- contexts and compare-and-swap (master-key rotation) -------------------------------------------------
CTX_A = {"customer": A, "use": "pii-fields"}


def test_context_is_stored_with_the_entry(store):
    store.put_if_absent(A, b"wa", "v1", context=CTX_A)
    store.put(B, b"wb", "v1")  # written without a context (older callers)
    by_id = {e.entry_id: e for e in store.entries()}
    assert by_id[A].context == CTX_A and by_id[A].wrapped == b"wa" and by_id[A].key_version == "v1"
    assert by_id[B].context is None
    assert store.entry(A) == by_id[A] and store.entry(C) is None
    store.put(A, b"wa2", "v2")  # a replacement without a context keeps the stored one
    assert store.entry(A).context == CTX_A


def test_swap_replaces_only_the_expected_key(store):
    store.put(A, b"old", "v1")
    assert store.swap(A, b"other", b"new", "v2", CTX_A) is False
    assert store.get(A) == b"old"
    assert store.swap(A, b"old", b"new", "v2", CTX_A) is True
    assert store.entry(A).wrapped == b"new" and store.entry(A).key_version == "v2"
    assert store.entry(A).context == CTX_A
    store.delete(A)
    assert store.swap(A, b"new", b"newer", "v3", CTX_A) is False  # an erasure is never undone
    assert store.get(A) is None and store.is_erased(A)
    assert list(store.entries()) == []


def test_sqlite_store_of_the_old_schema_gets_the_context_column(tmp_path):
    import sqlite3

    path = tmp_path / "data_keys.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE data_keys (pk TEXT PRIMARY KEY, wrapped BLOB, key_version TEXT, "
        "created_at TEXT NOT NULL, erased_at TEXT)"
    )
    conn.execute("INSERT INTO data_keys VALUES (?, ?, 'v1', 'now', NULL)", (A, b"wa"))
    conn.commit()
    conn.close()
    store = SqliteDataKeyStore(path)
    SqliteDataKeyStore(path)  # opening twice is fine
    [entry] = store.entries()
    assert (entry.entry_id, entry.wrapped, entry.context) == (A, b"wa", None)
    assert store.swap(A, b"wa", b"wb", "v2", CTX_A) and store.entry(A).context == CTX_A
