"""The batch job on hand-written IBM rows: reconciliation, split, idempotent re-runs, no PII in the lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.compliance.leakscan import LeakScanner
from tests.ibm_samples import PII_VALUES, TRANSACTIONS_ROWS, write_samples


@pytest.fixture()
def source(tmp_path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    users, cards, transactions = write_samples(folder)
    with transactions.open("a") as f:  # two bad rows: an unknown card and a broken amount
        f.write("9,9,2010,1,1,10:00,$1.00,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n")
        f.write("0,0,2010,1,1,10:00,$1.x0,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n")
    return folder


def test_rows_reconcile_and_the_newest_rows_are_left_for_the_stream(source):
    b = Backends()
    report = run_batch(source, b)
    tx = report.files["credit_card_transactions-ibm_v2.csv"]
    assert tx["rows_read"] == len(TRANSACTIONS_ROWS) + 2
    assert tx["rows_quarantined"] == 2
    assert tx["rows_accepted"] == report.batch_rows + report.stream_rows
    assert report.stream_rows >= 1 and report.split is not None
    lake = b.catalog.query("SELECT count(*) AS n, max(ts) AS last FROM transactions").to_pylist()[0]
    assert lake["n"] == report.batch_rows
    assert lake["last"] < report.split.cutoff
    assert b.catalog.query("SELECT count(*) AS n FROM customers").to_pylist() == [{"n": 3}]


def test_a_second_run_skips_done_chunks_and_duplicates_nothing(source):
    b = Backends()
    first = run_batch(source, b)
    second = run_batch(source, b)
    assert second.chunks_skipped == second.chunks >= 1
    got = b.catalog.query("SELECT count(*) AS n, count(DISTINCT txn_id) AS ids FROM transactions").to_pylist()
    assert got == [{"n": first.batch_rows, "ids": first.batch_rows}]


def test_an_interrupted_chunk_is_rewritten_not_appended(source):
    b = Backends()
    first = run_batch(source, b)
    # Simulate a crash after the data files were written but before the chunk was marked done.
    for info in list(b.object_store.list(f"s3://{b.settings.lake_bucket}/_manifests/")):
        b.object_store.delete(info.uri)
    again = run_batch(source, b)
    assert again.chunks_skipped == 0
    n = b.catalog.query("SELECT count(*) AS n FROM transactions").to_pylist()[0]["n"]
    assert n == first.batch_rows


def test_the_lake_and_quarantine_hold_no_clear_personal_data(source):
    b = Backends()
    run_batch(source, b)
    scanner = LeakScanner(known_values=PII_VALUES)
    assert scanner.known, "nothing to look for"
    assert scanner.scan([b.settings.lake_dir, b.settings.quarantine_dir]) == []
    customers = b.catalog.query("SELECT * FROM customers")
    assert "person" not in customers.column_names and "person_enc" in customers.column_names
    cards = b.catalog.query("SELECT * FROM cards")
    assert not {"cvv", "card_number", "expires"} & set(cards.column_names)


def test_the_leak_scan_finds_a_planted_leak_in_compressed_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"note": ["ok", "Jane Doe paid"], "cvv": ["1", "2"]}),
        tmp_path / "x.parquet",
        compression="zstd",
    )
    (tmp_path / "log.txt").write_text("card 4000123412341234 declined; mail jane@example.com\n")
    kinds = {(Path(f.path).name, f.kind) for f in LeakScanner(["Jane Doe"]).scan([tmp_path])}
    assert kinds == {
        ("x.parquet", "known_value"),
        ("x.parquet", "forbidden_column"),
        ("log.txt", "card_number"),
        ("log.txt", "email"),
    }
