"""The profile of IBM files: exact figures on hand-written samples, streaming, and the realism checks."""

from __future__ import annotations

import json
from datetime import datetime

import pyarrow as pa
from rich.console import Console

from cdp.ibm.profile import Profile, profile_files, realism_checks
from cdp.ibm.quarantine import read_quarantine
from cdp.ibm.schema import TRANSACTIONS_HEADER, TRANSACTIONS_SCHEMA
from cdp.ibm.writer import TransactionsWriter
from tests.ibm_samples import TRANSACTIONS_ROWS, csv_text, write_samples


def test_profile_of_the_samples(tmp_path) -> None:
    users, cards, tx = write_samples(tmp_path)
    # one more row from an unknown card, to see the quarantine in the profile
    tx.write_text(
        csv_text(TRANSACTIONS_HEADER, [*TRANSACTIONS_ROWS, TRANSACTIONS_ROWS[0].replace("0,0,", "5,0,", 1)])
    )
    profile = profile_files(users, cards, tx, tmp_path / "q")

    assert (profile.users, profile.cards, profile.transactions) == (3, 4, len(TRANSACTIONS_ROWS))
    assert profile.cards_per_user == {"min": 1.0, "mean": 4 / 3, "max": 2.0}
    assert profile.brand_shares == {"Mastercard": 25.0, "Visa": 25.0, "Amex": 25.0, "Discover": 25.0}
    assert profile.type_shares == {"Debit": 25.0, "Credit": 50.0, "Debit (Prepaid)": 25.0}
    assert profile.frauds == 2 and abs(profile.fraud_rate - 25.0) < 1e-9
    assert profile.channel_shares == {"swipe": 50.0, "chip": 25.0, "online": 25.0}
    assert profile.error_rows == 4 and profile.error_row_rate == 50.0
    assert profile.distinct_mccs == 6 and profile.distinct_merchants == 6
    assert profile.reversals == 2
    assert (profile.first_transaction, profile.last_transaction) == (
        "2002-09-01 06:21:00",
        "2020-02-28 00:01:00",
    )
    # every month with rows has at least half the median volume; 2015-11 is the one with fraud labels
    assert profile.months_without_fraud == ["2002-09", "2010-03", "2019-12", "2020-02"]
    # card (0, 1) opened 04/2010, one of its rows is dated 2010-03: reported, never failed
    assert profile.rows_outside_card_life == 1
    (life,) = [c for c in realism_checks(profile) if "open..expiry" in c.name]
    assert life.value == 1 and life.passed

    files = {f.file: f for f in profile.files}
    tx_counts = files["credit_card_transactions-ibm_v2.csv"]
    assert (tx_counts.rows_read, tx_counts.rows_accepted, tx_counts.rows_quarantined) == (9, 8, 1)
    assert tx_counts.top_reasons == [("unknown card", 1)]
    assert files["sd254_users.csv"].rows_quarantined == 0
    assert read_quarantine(tmp_path / "q").num_rows == 1

    data = json.loads(json.dumps(profile.to_dict()))
    assert data["months_without_fraud_count"] == 4 and data["users"] == 3

    console = Console(record=True, width=120)
    profile.render(console)
    text = console.export_text()
    assert "Source files" in text and "unknown card" in text and "Mastercard" in text


def test_profile_with_transactions_only_streams_chunks(tmp_path) -> None:
    path = tmp_path / "t.csv"
    n = 50_000
    table = pa.table(
        {
            "user": pa.array([i % 7 for i in range(n)], pa.int32()),
            "card": pa.array([0] * n, pa.int8()),
            "ts": pa.array(
                [datetime(2019, 1 + i % 12, 1 + i % 28, 12, 0) for i in range(n)], pa.timestamp("s")
            ),
            "amount_cents": pa.array([(i % 1000) - 10 for i in range(n)], pa.int64()),
            "channel": pa.array(["online" if i % 10 == 0 else "swipe" for i in range(n)]),
            "merchant_id": pa.array([i % 321 for i in range(n)], pa.int64()),
            "merchant_city": pa.array(["ONLINE" if i % 10 == 0 else "Rome" for i in range(n)]),
            "merchant_state": pa.array([None if i % 10 == 0 else "Italy" for i in range(n)], pa.string()),
            "zip": pa.array([None] * n, pa.string()),
            "mcc": pa.array([5000 + i % 120 for i in range(n)], pa.int16()),
            "errors": pa.array([["Bad PIN"] if i % 50 == 0 else [] for i in range(n)], pa.list_(pa.string())),
            "is_fraud": pa.array([i % 1000 == 0 and i < 30_000 for i in range(n)]),
        },
        schema=TRANSACTIONS_SCHEMA.remove(0),
    )
    with TransactionsWriter(path) as writer:
        writer.write(table)
    profile = profile_files(None, None, (path,), tmp_path / "q")
    assert profile.users is None and profile.cards is None and profile.rows_outside_card_life is None
    assert profile.transactions == n and profile.frauds == 30
    assert profile.reversals == sum(1 for i in range(n) if (i % 1000) < 10)
    assert profile.distinct_mccs == 120 and profile.distinct_merchants == 321
    assert profile.error_rows == n // 50
    assert abs(profile.channel_shares["online"] - 10.0) < 1e-9
    fraud_months = {datetime(2019, 1 + i % 12, 1).strftime("%Y-%m") for i in range(0, 30_000, 1000)}
    assert profile.months_without_fraud == sorted(
        f"2019-{m:02d}" for m in range(1, 13) if f"2019-{m:02d}" not in fraud_months
    )

    checks = {c.name: c for c in realism_checks(profile)}
    assert checks["distinct MCCs"].passed and checks["reversals"].passed
    assert not checks["fraud rate %"].passed  # 0.06 %
    assert "Mastercard share %" not in checks  # no cards file: card checks skipped


def _realistic_profile() -> Profile:
    return Profile(
        users=2000,
        cards=6146,
        cards_per_user={"min": 1.0, "mean": 3.07, "max": 9.0},
        brand_shares={"Mastercard": 52.2, "Visa": 37.8, "Amex": 6.5, "Discover": 3.4},
        type_shares={"Debit": 57.1, "Credit": 33.5, "Debit (Prepaid)": 9.4},
        transactions=24_386_900,
        frauds=29_757,
        fraud_rate=0.122,
        channel_shares={"swipe": 63.1, "chip": 25.8, "online": 11.1},
        error_rows=390_000,
        error_row_rate=1.6,
        distinct_mccs=109,
        distinct_merchants=100_343,
        reversals=1_000,
        months_without_fraud=["2019-11", "2019-12"],
    )


def test_realism_checks_pass_on_the_published_figures() -> None:
    checks = realism_checks(_realistic_profile())
    assert len(checks) == 17
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_realism_checks_fail_each_way() -> None:
    profile = _realistic_profile()
    profile.fraud_rate = 0.5
    profile.channel_shares = {"swipe": 80.0, "chip": 10.0, "online": 10.0}
    profile.error_row_rate = 0.2
    profile.distinct_mccs = 40
    profile.months_without_fraud = []
    profile.reversals = 0
    profile.brand_shares = {"Visa": 100.0}
    profile.type_shares = {"Debit": 57.1, "Credit": 33.5, "Debit (Prepaid)": 9.4}
    profile.cards_per_user = {"min": 0.0, "mean": 5.0, "max": 12.0}
    failed = {c.name for c in realism_checks(profile) if not c.passed}
    assert failed == {
        "fraud rate %",
        "swipe share %",
        "chip share %",
        "rows with errors %",
        "distinct MCCs",
        "months with volume but no fraud",
        "reversals",
        "Mastercard share %",
        "Visa share %",
        "Amex share %",
        "cards per user (min, max)",
        "cards per user (mean)",
    }
