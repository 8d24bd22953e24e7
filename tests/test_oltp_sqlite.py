"""SQLite adapter specifics: WAL concurrency, atomic write calls, private file, erasure on disk."""

from __future__ import annotations

import sqlite3
import stat
import threading
from datetime import date, datetime, timedelta

import pytest

from cdp.oltp import Counts, RecordError
from cdp.oltp.sqlite import DB_FILE, SqliteOltpStore
from cdp.settings import Settings

NAME = "Zebulon Quintessa"  # a PII value easy to look for in the raw file bytes


def customer(user: int, person: str = "Ana Lima") -> dict:
    return dict(
        line=user + 2,
        user=user,
        person=person,
        current_age=40,
        retirement_age=67,
        birth_year=1980,
        birth_month=5,
        gender="Female",
        address=f"{user} Main Street",
        apartment=None,
        city="Austin",
        state="TX",
        zipcode="73301",
        latitude=30.27,
        longitude=-97.74,
        per_capita_income=30000,
        yearly_income=61000,
        total_debt=1000,
        fico_score=700,
        num_credit_cards=1,
        email=f"user{user}@example.com",
    )


def card(user: int, index: int = 0) -> dict:
    return dict(
        line=user + 2,
        user=user,
        card_index=index,
        card_brand="Visa",
        card_type="Debit",
        card_number_enc="1" + "A" * 64,  # the loader's ciphertext; the store keeps what it is given
        pan_last4="7777",
        expires=date(2023, 1, 1),
        has_chip=True,
        cards_issued=1,
        credit_limit=5000,
        acct_open_date=date(2010, 1, 1),
        year_pin_last_changed=2012,
        card_on_dark_web=False,
    )


def txn(line: int, user: int = 0) -> dict:
    return dict(
        line=line,
        user=user,
        card=0,
        ts=datetime(2019, 1, 1) + timedelta(minutes=line),
        amount_cents=100,
        channel="chip",
        merchant_id=42,
        merchant_city="Austin",
        merchant_state="TX",
        zip="73301",
        mcc=5411,
        errors=[],
        is_fraud=False,
    )


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / DB_FILE


def test_wal_mode_and_private_file(path) -> None:
    with SqliteOltpStore(path) as store:
        assert store.journal_mode() == "wal"
        store.upsert_customers([customer(0)])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.with_name(DB_FILE + "-wal").stat().st_mode) == 0o600


def test_reader_is_not_blocked_by_an_open_write_transaction(path) -> None:
    with SqliteOltpStore(path) as reader:
        reader.upsert_customers([customer(0)])
        writer = sqlite3.connect(path, isolation_level=None, timeout=0.1)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE customers SET fico_score = 500 WHERE user = 0")
        writer.execute("INSERT INTO customers (user, person) VALUES (1, 'x')")
        # the write lock is held: the store still reads, and sees the last committed state only
        assert reader.get_customer(0)["fico_score"] == 700
        assert reader.counts() == Counts(1, 0, 0)
        writer.execute("COMMIT")
        writer.close()
        assert reader.get_customer(0)["fico_score"] == 500
        assert reader.counts() == Counts(2, 0, 0)


def test_writer_is_not_blocked_by_an_open_read_snapshot(path) -> None:
    with SqliteOltpStore(path, busy_timeout_s=0.2) as store:
        store.put_transactions([txn(2)])
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM transactions").fetchone()[0] == 1
        assert store.put_transactions([txn(3), txn(4)]) == 2  # would raise "database is locked" without WAL
        assert reader.execute("SELECT count(*) FROM transactions").fetchone()[0] == 1  # its snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM transactions").fetchone()[0] == 3
        reader.close()


def test_two_stores_on_one_file_write_and_read_concurrently(path) -> None:
    writer, reader = SqliteOltpStore(path), SqliteOltpStore(path)
    seen: list[int] = []
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for batch in range(40):
                writer.put_transactions([txn(1000 * batch + i) for i in range(50)])
        except BaseException as exc:  # surfaced by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    while thread.is_alive():
        seen.append(reader.counts().transactions)
    thread.join()
    seen.append(reader.counts().transactions)
    writer.close()
    reader.close()
    assert failures == []
    assert seen == sorted(seen) and seen[-1] == 2000
    assert all(n % 50 == 0 for n in seen)  # every read saw whole write calls only


def test_a_bad_row_rolls_back_the_whole_call(path) -> None:
    with SqliteOltpStore(path) as store:
        rows = [customer(0), customer(1), customer(2) | {"fico_score": "high"}]
        with pytest.raises(RecordError, match="customers line 4: field 'fico_score'"):
            store.upsert_customers(iter(rows))
        with pytest.raises(RecordError):
            store.put_transactions([txn(2), txn(3) | {"user": None}])
        assert store.counts() == Counts(0, 0, 0)


def test_erased_pii_is_gone_from_the_files(path) -> None:
    with SqliteOltpStore(path) as store:
        store.upsert_customers([customer(0, NAME), customer(1)])
        store.upsert_cards([card(0), card(1)])
        raw = path.read_bytes() + path.with_name(DB_FILE + "-wal").read_bytes()
        assert NAME.encode() in raw
        assert store.delete_customer(0) == 2
        raw = path.read_bytes() + path.with_name(DB_FILE + "-wal").read_bytes()
        assert NAME.encode() not in raw and b"0 Main Street" not in raw
        assert store.get_customer(1)["person"] == "Ana Lima"


def test_from_settings_puts_the_store_in_the_state_dir(tmp_path) -> None:
    settings = Settings(home=tmp_path / "home")
    store = SqliteOltpStore.from_settings(settings)
    try:
        assert store.path == settings.state_dir / DB_FILE and store.path.exists()
        store.upsert_cards([card(3, 1)])
    finally:
        store.close()
    with SqliteOltpStore(settings.state_dir / DB_FILE) as again:  # data is durable across connections
        assert again.get_card(3, 1)["pan_last4"] == "7777"
