"""The Batch job's entry: the files of a landing drop are fetched into a scratch folder (sub-folders not)."""

from __future__ import annotations

import pytest

from cdp.batch.landing import fetch_landing, main
from cdp.objectstore.local import FolderObjectStore


def test_fetch_copies_only_the_drops_own_files(tmp_path) -> None:
    store = FolderObjectStore(tmp_path / "store", fsync=False)
    store.put_bytes("s3://lake/landing/d1/sd254_users.csv", b"users")
    store.put_bytes("s3://lake/landing/d1/sd254_cards.csv", b"cards")
    store.put_bytes("s3://lake/landing/d1/older/x.csv", b"no")
    store.put_bytes("s3://lake/landing/d2/other.csv", b"no")
    store.put_bytes("s3://lake/landing/d1/_READY", b"")
    out = tmp_path / "scratch"
    out.mkdir()
    fetched = fetch_landing(store, "s3://lake/landing/d1/_READY", out)  # the marker names its drop
    assert [p.name for p in fetched] == ["sd254_cards.csv", "sd254_users.csv"]
    assert (out / "sd254_users.csv").read_bytes() == b"users"
    assert sorted(p.name for p in out.iterdir()) == ["sd254_cards.csv", "sd254_users.csv"]


def test_an_empty_drop_and_a_bad_argument_fail_in_one_line(tmp_path, capsys) -> None:
    store = FolderObjectStore(tmp_path / "store", fsync=False)
    with pytest.raises(FileNotFoundError, match="no files under s3://lake/landing/none/"):
        fetch_landing(store, "s3://lake/landing/none/", tmp_path)
    assert main(["/local/folder"]) == 2
    assert "usage" in capsys.readouterr().err
