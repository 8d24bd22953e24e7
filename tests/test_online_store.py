"""Online store port: the same contract on the local adapter (memory + SQLite snapshot) and on DynamoDB
(moto)."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from cdp.backends import Backends
from cdp.online.dynamodb import DynamoDbOnlineStore
from cdp.online.local import LocalOnlineStore
from cdp.online.port import OnlineStore
from cdp.settings import get_settings


@pytest.fixture(params=["local", "dynamodb"])
def store(request, tmp_path, monkeypatch):
    if request.param == "local":
        yield LocalOnlineStore(tmp_path / "online.sqlite")
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s = DynamoDbOnlineStore(boto3.client("dynamodb", region_name="eu-west-1"), "cdp-online-features")
        s.create_table()
        yield s


def test_contract_put_get_delete_keys(store):
    assert isinstance(store, OnlineStore)
    items = {f"fraud_card#crd_{i:04d}": bytes([i % 256]) * (i + 1) for i in range(260)}  # > one batch
    store.put_many(items)
    got = store.get_many([*items, "fraud_card#missing"])
    assert got == items
    store.put_many({"fraud_card#crd_0000": b"new"})
    assert store.get_many(["fraud_card#crd_0000"]) == {"fraud_card#crd_0000": b"new"}
    store.delete_many(["fraud_card#crd_0001", "fraud_card#never"])
    assert "fraud_card#crd_0001" not in store.get_many(["fraud_card#crd_0001"])
    store.put_many({"other#x": b"1"})
    assert store.keys("fraud_card#") == sorted(set(items) - {"fraud_card#crd_0001"})
    assert len(store.keys()) == 260


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
