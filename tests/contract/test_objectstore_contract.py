"""Contract of the object-store port, run against both adapters: a local folder and S3 (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.objectstore import InvalidUriError, ObjectNotFoundError, ObjectStore
from cdp.objectstore.local import FolderObjectStore
from cdp.objectstore.s3 import S3ObjectStore
from cdp.settings import Settings

BUCKET = "cdp-lake"
REGION = "eu-west-1"


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield FolderObjectStore(tmp_path / "root")
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield S3ObjectStore(client)


def uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def test_adapter_satisfies_the_port(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


def test_bytes_round_trip_and_overwrite_changes_the_etag(store: ObjectStore) -> None:
    store.put_bytes(uri("a/b.bin"), b"\x00first")
    before = next(iter(store.list(uri("a/b.bin"))))
    assert store.get_bytes(uri("a/b.bin")) == b"\x00first"
    store.put_bytes(uri("a/b.bin"), b"second version")
    after = next(iter(store.list(uri("a/b.bin"))))
    assert store.get_bytes(uri("a/b.bin")) == b"second version"
    assert (before.size, after.size) == (6, 14)
    assert before.etag != after.etag
    assert after.last_modified.tzinfo is not None


def test_missing_objects(store: ObjectStore, tmp_path: Path) -> None:
    assert not store.exists(uri("nope"))
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes(uri("nope"))
    with pytest.raises(FileNotFoundError):  # the port's error is also a FileNotFoundError
        store.get_file(uri("nope"), tmp_path / "out" / "nope")
    assert not (tmp_path / "out" / "nope").exists()
    store.delete(uri("nope"))  # deleting a missing object is fine, as in S3


def test_files_round_trip_and_downloads_create_parent_folders(store: ObjectStore, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "source.parquet"
    source.write_bytes(payload)
    store.put_file(uri("lake/tx/year=2019/part-0.parquet"), source)
    assert store.exists(uri("lake/tx/year=2019/part-0.parquet"))
    target = tmp_path / "deep" / "down" / "copy.parquet"
    store.get_file(uri("lake/tx/year=2019/part-0.parquet"), target)
    assert target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["copy.parquet"]  # no temp file left behind


def test_list_uses_string_prefixes_in_key_order(store: ObjectStore) -> None:
    for key in ["b/q", "a/y", "ab/z", "a/x", "a/sub/deep"]:
        store.put_bytes(uri(key), key.encode())
    assert [o.uri for o in store.list(uri("a"))] == [uri(k) for k in ["a/sub/deep", "a/x", "a/y", "ab/z"]]
    assert [o.uri for o in store.list(uri("a/"))] == [uri(k) for k in ["a/sub/deep", "a/x", "a/y"]]
    assert [o.uri for o in store.list(f"s3://{BUCKET}/")] == [
        uri(k) for k in ["a/sub/deep", "a/x", "a/y", "ab/z", "b/q"]
    ]
    assert list(store.list(uri("zzz/"))) == []
    assert {o.size for o in store.list(uri("a/x"))} == {3}


def test_delete_removes_only_that_object(store: ObjectStore) -> None:
    store.put_bytes(uri("d/one"), b"1")
    store.put_bytes(uri("d/two"), b"2")
    store.delete(uri("d/one"))
    assert not store.exists(uri("d/one"))
    assert [o.uri for o in store.list(uri("d/"))] == [uri("d/two")]
    store.delete(uri("d/two"))
    assert list(store.list(uri("d/"))) == []


@pytest.mark.parametrize(
    "bad",
    [
        "s3://cdp-lake/../secret-customers.csv",
        "s3://cdp-lake/a/../../secret-customers.csv",
        "s3://cdp-lake//etc/secret-customers.csv",
        "s3://cdp-lake/a/./secret-customers.csv",
        "s3://cdp-lake/a\\..\\secret-customers.csv",
        "s3://cdp-lake/",
        "s3://cdp-lake",
        "s3://../secret-customers.csv",
        "s3://Not_A_Bucket/secret-customers.csv",
        "/etc/secret-customers.csv",
        "file:///etc/secret-customers.csv",
    ],
)
def test_unsafe_or_malformed_uris_are_rejected_without_echoing_them(store: ObjectStore, bad: str) -> None:
    with pytest.raises(InvalidUriError) as error:
        store.put_bytes(bad, b"x")
    assert "secret-customers" not in str(error.value)
    with pytest.raises(InvalidUriError):
        store.get_bytes(bad)


def test_local_path_is_a_real_file_locally_and_none_on_s3(store: ObjectStore) -> None:
    store.put_bytes(uri("t/x.csv"), b"a,b\n1,2\n")
    path = store.local_path(uri("t/x.csv"))
    if isinstance(store, S3ObjectStore):
        assert path is None
    else:
        assert path is not None and path.read_bytes() == b"a,b\n1,2\n"
        assert store.local_path(uri("t/")) == path.parent


def test_aws_adapter_from_settings_reaches_the_same_bucket(store: ObjectStore, tmp_path: Path) -> None:
    if not isinstance(store, S3ObjectStore):
        pytest.skip("the local factory is covered in test_objectstore_local.py")
    other = S3ObjectStore.from_settings(Settings(home=tmp_path, aws_region=REGION))
    other.put_bytes(uri("from-settings"), b"1")
    assert store.get_bytes(uri("from-settings")) == b"1"
