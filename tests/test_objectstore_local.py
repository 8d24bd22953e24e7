"""Behaviour specific to the local folder object store: atomic writes, path safety, real paths."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.objectstore import InvalidUriError
from cdp.objectstore.local import TEMP_PREFIX, FolderObjectStore
from cdp.settings import Settings


def test_uri_maps_to_root_bucket_key(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    store.put_bytes("s3://lake/tx/year=2020/part.bin", b"x")
    assert (tmp_path / "lake" / "tx" / "year=2020" / "part.bin").read_bytes() == b"x"


def test_from_settings_roots_the_store_in_the_lake_dir(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    store = FolderObjectStore.from_settings(settings)
    assert (
        store.local_path(f"s3://{settings.lake_bucket}/k") == settings.lake_dir / settings.lake_bucket / "k"
    )


def test_a_failed_put_leaves_the_old_object_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    store = FolderObjectStore(tmp_path)
    store.put_bytes("s3://lake/obj", b"old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put_bytes("s3://lake/obj", b"new content that never lands")
    monkeypatch.undo()
    assert store.get_bytes("s3://lake/obj") == b"old"
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["obj"]


def test_readers_never_see_a_partial_object_while_it_is_rewritten(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path, fsync=False)
    versions = [b"A" * 200_000, b"B" * 350_000]
    store.put_bytes("s3://lake/hot", versions[0])
    stop, seen, bad = threading.Event(), set(), []

    def reader() -> None:
        while not stop.is_set():
            data = store.get_bytes("s3://lake/hot")
            seen.add(len(data))
            if data not in versions:
                bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(200):
        store.put_bytes("s3://lake/hot", versions[i % 2])
    stop.set()
    thread.join()
    assert bad == []
    assert seen == {200_000, 350_000}


def test_temp_files_are_hidden_from_listings_and_reserved(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    store.put_bytes("s3://lake/p/real", b"1")
    (tmp_path / "lake" / "p" / f"{TEMP_PREFIX}abc").write_bytes(b"half written")
    assert [o.uri for o in store.list("s3://lake/p/")] == ["s3://lake/p/real"]
    with pytest.raises(InvalidUriError):
        store.put_bytes(f"s3://lake/p/{TEMP_PREFIX}x", b"1")


def test_a_symlink_cannot_lead_a_key_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "lake").mkdir(parents=True)
    (root / "lake" / "escape").symlink_to(outside)
    store = FolderObjectStore(root)
    with pytest.raises(InvalidUriError):
        store.put_bytes("s3://lake/escape/planted", b"x")
    assert list(outside.iterdir()) == []


def test_an_object_and_a_longer_key_under_it_cannot_coexist_locally(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    store.put_bytes("s3://lake/a", b"1")
    with pytest.raises(InvalidUriError):
        store.put_bytes("s3://lake/a/b", b"2")
    store.put_bytes("s3://lake/c/d", b"3")
    with pytest.raises(InvalidUriError):
        store.put_bytes("s3://lake/c", b"4")


def test_delete_prunes_emptied_folders_but_keeps_the_bucket(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    store.put_bytes("s3://lake/x/y/z/obj", b"1")
    store.delete("s3://lake/x/y/z/obj")
    assert list((tmp_path / "lake").iterdir()) == []


def test_duckdb_reads_hive_partitions_through_local_path(tmp_path: Path) -> None:
    store = FolderObjectStore(tmp_path)
    for year in (2019, 2020):
        store.put_bytes(f"s3://lake/tx/year={year}/part-0.csv", f"amount\n{year}.5\n".encode())
    folder = store.local_path("s3://lake/tx/")
    rows = duckdb.sql(
        f"SELECT year, amount FROM read_csv('{folder}/*/*.csv', hive_partitioning = true) ORDER BY year"
    ).fetchall()
    assert rows == [(2019, 2019.5), (2020, 2020.5)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\\x00-_ é")), min_size=0, max_size=24))
def test_any_key_is_rejected_or_stays_inside_its_bucket(tmp_path_factory, key: str) -> None:
    root = tmp_path_factory.getbasetemp() / "hypothesis-root"
    store = FolderObjectStore(root)
    try:
        path = store.local_path(f"s3://lake/{key}")
    except InvalidUriError:
        return
    assert path is not None
    assert path.resolve().is_relative_to((root / "lake").resolve())
