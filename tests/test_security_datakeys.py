"""Data-key store adapters: SQLite concurrency and schema upgrade, construction from settings (the port's
contract, on both adapters, is tests/contract/test_datakeys_contract.py)."""

from __future__ import annotations

import threading

from moto import mock_aws

from cdp.security.datakeys.dynamodb import DynamoDataKeyStore, create_table
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.settings import Settings

A, B, C = "usr_" + "a" * 26, "usr_" + "b" * 26, "usr_" + "c" * 26


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


# -- contexts (master-key rotation) ---------------------------------------------------------------------
CTX_A = {"customer": A, "use": "pii-fields"}


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
