"""Online store adapters: the local store's snapshots and the settings' choice of adapter (the port's
contract, on both adapters, is tests/contract/test_online_contract.py)."""

from __future__ import annotations

import threading

from cdp.backends import Backends
from cdp.online.dynamodb import DynamoDbOnlineStore
from cdp.online.local import LocalOnlineStore
from cdp.settings import get_settings


def test_local_snapshot_restores_writes_and_deletes(tmp_path):
    path = tmp_path / "online.sqlite"
    first = LocalOnlineStore(path)
    first.put_many({"a": b"1", "b": b"2"})
    assert LocalOnlineStore(path).get_many(["a"]) == {}  # nothing durable before a snapshot
    assert first.snapshot() == 2
    first.delete_many(["a"])
    first.put_many({"c": b"3"})
    assert first.snapshot() == 1
    assert LocalOnlineStore(path).get_many(["a", "b", "c"]) == {"b": b"2", "c": b"3"}
    assert LocalOnlineStore(None).snapshot() == 0


def test_backends_pick_the_adapter_from_the_settings(monkeypatch):
    assert isinstance(Backends(get_settings()).online_store, LocalOnlineStore)
    monkeypatch.setenv("CDP_BACKEND", "aws")
    get_settings.cache_clear()
    assert isinstance(Backends(get_settings()).online_store, DynamoDbOnlineStore)


def test_local_snapshots_share_one_connection_across_batches_threads_and_a_close(tmp_path):
    path = tmp_path / "online.sqlite"
    store = LocalOnlineStore(path)
    for i in range(20):  # one snapshot per batch, as the stream handler does
        store.put_many({f"k{i:02d}": bytes([i])})
        assert store.snapshot() == 1
    conn = store._conn
    assert conn is not None

    errors = []

    def snapshot_in_another_thread():
        try:
            store.put_many({"from_thread": b"t"})
            store.snapshot()
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=snapshot_in_another_thread)
    worker.start()
    worker.join()
    assert errors == [] and store._conn is conn  # the same connection served every snapshot
    store.close()
    store.delete_many(["k00"])
    store.put_many({"after_close": b"c"})
    assert store.snapshot() == 1  # reopens
    restored = LocalOnlineStore(path)
    assert restored.keys() == sorted({f"k{i:02d}" for i in range(1, 20)} | {"from_thread", "after_close"})
    assert restored.get_many(["k19", "from_thread"]) == {"k19": bytes([19]), "from_thread": b"t"}
