"""Transactions dated outside their card's life (before its open month, after its expiry month): kept and
flagged by one rule in the profile, the batch job and the stream producer; counts reconcile; the card's
age never goes negative in the features."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.ibm.card_life import AFTER_EXPIRY, BEFORE_OPEN
from cdp.ibm.profile import profile_files
from cdp.ibm.quarantine import read_flagged
from cdp.streaming.produce import produce
from features.online import CardProfile
from features.online_compile import _CARD_ATTRIBUTE_PY
from features.render import _CARD_ATTRIBUTE_SQL
from tests.ibm_samples import TRANSACTIONS_ROWS, write_samples

TX_FILE = "credit_card_transactions-ibm_v2.csv"
# Card (1, 0) opened 01/2015 and expires 07/2021: a row in 08/2021, the newest of the file (the stream's).
AFTER_EXPIRY_ROW = "1,0,2021,8,2,10:00,$9.99,Chip Transaction,42,Providence,RI,2921.0,5499,,No"
# The samples' row of card (0, 1) (opened 04/2010) on 2010-03-04 is before its open month (the batch's).
BEFORE_OPEN_LINE = 1 + TRANSACTIONS_ROWS.index(next(r for r in TRANSACTIONS_ROWS if ",2010,3,4," in r)) + 1


@pytest.fixture()
def source(tmp_path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    _, _, transactions = write_samples(folder)
    with transactions.open("a") as f:
        f.write(AFTER_EXPIRY_ROW + "\n")
        f.write("9,9,2010,1,1,10:00,$1.00,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n")  # unknown card
    return folder


def test_profile_batch_and_stream_flag_the_same_rows_and_keep_them(source, tmp_path):
    rows = len(TRANSACTIONS_ROWS) + 2
    after_line = len(TRANSACTIONS_ROWS) + 2
    profile = profile_files(
        source / "sd254_users.csv", source / "sd254_cards.csv", source / TX_FILE, tmp_path / "profile-q"
    )
    assert profile.rows_outside_card_life == 2
    listed = read_flagged(tmp_path / "profile-q").to_pylist()
    assert {(r["line"], r["reason"]) for r in listed} == {
        (BEFORE_OPEN_LINE, BEFORE_OPEN),
        (after_line, AFTER_EXPIRY),
    }
    tx_counts = next(f for f in profile.files if f.file == TX_FILE)
    assert (tx_counts.rows_read, tx_counts.rows_quarantined) == (rows, 1)

    b = Backends()
    report = run_batch(source, b)
    tx = report.files[TX_FILE]
    # flagged rows are accepted rows: nothing is lost, the reconciliation is unchanged
    assert tx["rows_read"] == tx["rows_accepted"] + tx["rows_quarantined"] == rows
    assert tx["rows_quarantined"] == 1 and tx["rows_flagged"] == profile.rows_outside_card_life == 2
    assert tx["rows_accepted"] == report.batch_rows + report.stream_rows
    batch_flags = read_flagged(b.settings.quarantine_dir).to_pylist()
    assert [(r["file"], r["line"], r["reason"]) for r in batch_flags] == [
        (f, line, reason) for f, line, reason in ((TX_FILE, r["line"], r["reason"]) for r in listed)
    ]
    assert all(r["raw"] is None and r["field"] == "Year/Month" for r in batch_flags)
    # the row before its card's open month is in the lake (kept)
    lake = b.catalog.query(
        "SELECT count(*) AS n FROM transactions WHERE year = 2010 AND month = 3"
    ).to_pylist()
    assert lake == [{"n": 1}]

    # the stream's part: the newest row, after its card's expiry, is sent (kept) and counted
    assert report.stream_rows == 1
    sent = produce(source, b)
    assert (sent.total, sent.sent, sent.flagged) == (1, 1, 1)
    # reconciled: the lake's flagged rows plus the stream's are the profile's
    lake_flagged = sum(1 for r in batch_flags if r["reason"] == BEFORE_OPEN)
    assert lake_flagged + sent.flagged == profile.rows_outside_card_life


def test_the_card_age_feature_is_never_negative_offline_or_online():
    sql = _CARD_ATTRIBUTE_SQL["card_age_days"]
    con = duckdb.connect()
    ages = con.execute(
        f"SELECT {sql} AS age FROM (VALUES (DATE '2010-04-01', TIMESTAMP '2010-03-04 13:02:00'), "
        "(DATE '2010-04-01', TIMESTAMP '2010-04-11 00:00:00'), (NULL, TIMESTAMP '2010-04-11 00:00:00')) "
        "AS t(acct_open_date, ts), LATERAL (SELECT t.acct_open_date) AS c(acct_open_date), "
        "LATERAL (SELECT t.ts) AS a(ts)"
    ).fetchall()
    assert [a for (a,) in ages] == [0, 10, None]
    online = _CARD_ATTRIBUTE_PY["card_age_days"]
    opened = CardProfile.from_row({"acct_open_date": date(2010, 4, 1)})
    before, after = 1267707720, 1270944000  # 2010-03-04 13:02, 2010-04-11 00:00 (UTC)
    assert eval(online, {"profile": opened, "t": before}) == 0  # noqa: S307 - the compiled expression itself
    assert eval(online, {"profile": opened, "t": after}) == 10  # noqa: S307
    assert eval(online, {"profile": None, "t": after}) is None  # noqa: S307
