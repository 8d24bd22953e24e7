"""The validating reader: exact round trips, quarantine with field/reason/line, no personal data leaked."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.ibm.quarantine import Quarantine, read_quarantine
from cdp.ibm.reader import (
    SourceFormatError,
    find_source_files,
    iter_transactions,
    read_cards,
    read_transactions,
    read_users,
)
from cdp.ibm.schema import CARDS_HEADER, TRANSACTIONS_HEADER, TRANSACTIONS_SCHEMA, USERS_HEADER
from cdp.ibm.writer import TransactionsWriter, write_cards, write_users
from tests.ibm_samples import (
    CARDS_ROWS,
    KNOWN_CARDS,
    PII_VALUES,
    TRANSACTIONS_ROWS,
    TRANSACTIONS_VARIANTS,
    USERS_ROWS,
    cards_tables,
    csv_text,
    transactions_tables,
    users_tables,
    write_samples,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---- published format ---------------------------------------------------------------------------


def test_published_samples_parse_with_nothing_quarantined(tmp_path) -> None:
    users_path, cards_path, tx_path = write_samples(tmp_path)
    q = Quarantine(tmp_path / "q")
    users = read_users(users_path, q)
    cards = read_cards(cards_path, q, known_users=set(users.column("user").to_pylist()))
    tx = read_transactions(tx_path, q, known_cards=KNOWN_CARDS)
    assert q.total == 0
    assert (users.num_rows, cards.num_rows, tx.num_rows) == (3, 4, len(TRANSACTIONS_ROWS))

    jane, john = users.to_pylist()[:2]
    assert (jane["user"], jane["line"], jane["apartment"], jane["zipcode"]) == (0, 2, None, "91750")
    assert (jane["per_capita_income"], jane["yearly_income"], jane["total_debt"]) == (29278, 59696, 127613)
    assert (jane["latitude"], jane["longitude"]) == (34.15, -117.76)
    assert (john["user"], john["apartment"], john["zipcode"], john["per_capita_income"]) == (
        1,
        "Apt 7",
        "02921",
        196,
    )

    visa, amex = cards.to_pylist()[:2]
    assert visa["expires"] == date(2022, 12, 1) and visa["acct_open_date"] == date(2002, 9, 1)
    assert visa["credit_limit"] == 24295 and visa["has_chip"] is True and visa["card_on_dark_web"] is False
    assert amex["card_number"] == "371234567890123" and amex["cvv"] == "023"

    rows = tx.to_pylist()
    assert rows[0]["ts"] == datetime(2002, 9, 1, 6, 21) and rows[0]["zip"] == "91750"
    online = rows[2]
    assert (online["channel"], online["merchant_city"], online["merchant_state"], online["zip"]) == (
        "online",
        "ONLINE",
        None,
        None,
    )
    assert online["is_fraud"] is True and rows[3]["amount_cents"] == -47300
    assert rows[4]["merchant_state"] == "Italy" and rows[4]["errors"] == ["Bad PIN", "Insufficient Balance"]
    assert rows[4]["merchant_id"] == 8765432109876543210 and rows[3]["merchant_id"] == -1234567890123456789
    assert rows[5]["zip"] == "02921" and rows[5]["amount_cents"] == 5 and rows[5]["errors"] == ["Bad PIN"]
    assert rows[6]["errors"] == ["Bad CVV", "Bad Expiration", "Technical Glitch"]
    assert [r["line"] for r in rows] == list(range(2, 2 + len(TRANSACTIONS_ROWS)))
    assert all(r["errors"] == [] for r in rows[:4])


def test_accepted_variants_read_as_the_canonical_row(tmp_path) -> None:
    variant = tmp_path / "variant.csv"
    canonical = tmp_path / "canonical.csv"
    variant.write_text(csv_text(TRANSACTIONS_HEADER, [v for v, _ in TRANSACTIONS_VARIANTS]))
    canonical.write_text(csv_text(TRANSACTIONS_HEADER, [c for _, c in TRANSACTIONS_VARIANTS]))
    q = Quarantine(tmp_path / "q")
    assert read_transactions(variant, q).equals(read_transactions(canonical, q))
    assert q.total == 0


def test_crlf_line_endings_are_accepted(tmp_path) -> None:
    path = tmp_path / "crlf.csv"
    path.write_bytes(csv_text(TRANSACTIONS_HEADER, TRANSACTIONS_ROWS).replace("\n", "\r\n").encode())
    q = Quarantine(tmp_path / "q")
    assert read_transactions(path, q).num_rows == len(TRANSACTIONS_ROWS) and q.total == 0


# ---- round trips ------------------------------------------------------------------------------


@FAST
@given(table=transactions_tables(max_size=40), chunk=st.sampled_from([256, 1024, 1 << 20]))
def test_transactions_round_trip(tmp_path, table: pa.Table, chunk: int) -> None:
    folder = _fresh(tmp_path, "rt-tx")
    path = folder / "t.csv"
    with TransactionsWriter(path) as writer:
        writer.write(table)
    q = Quarantine(folder / "q")
    chunks = list(iter_transactions(path, q, chunk_bytes=chunk))
    back = pa.concat_tables(chunks) if chunks else TRANSACTIONS_SCHEMA.empty_table()
    assert q.total == 0
    assert back.equals(table)
    assert q.stats["t.csv"].rows_read == table.num_rows == q.stats["t.csv"].rows_accepted


@FAST
@given(table=users_tables())
def test_users_round_trip(tmp_path, table: pa.Table) -> None:
    folder = _fresh(tmp_path, "rt-users")
    write_users(table, folder / "u.csv")
    q = Quarantine(folder / "q")
    assert read_users(folder / "u.csv", q).equals(table)
    assert q.total == 0


@FAST
@given(table=cards_tables())
def test_cards_round_trip(tmp_path, table: pa.Table) -> None:
    folder = _fresh(tmp_path, "rt-cards")
    write_cards(table, folder / "c.csv")
    q = Quarantine(folder / "q")
    assert read_cards(folder / "c.csv", q).equals(table)
    assert q.total == 0


# ---- mangled transactions ---------------------------------------------------------------------

BASE = TRANSACTIONS_ROWS[0].split(",")  # a clean row of card (0, 0), no quoted fields


def _mangled(index: int, value: str) -> str:
    fields = list(BASE)
    fields[index] = value
    return ",".join(fields)


# name -> (line text, field, reason)
MANGLES = {
    "too few columns": (",".join(BASE[:-1]), None, "expected 15 columns, found 14"),
    "too many columns": (",".join([*BASE, "x"]), None, "expected 15 columns, found 16"),
    "bad amount": (_mangled(6, "134.09"), "Amount", "Amount: not a dollar amount like $12.34 ('134.09')"),
    "amount with letters": (
        _mangled(6, "$1x.00"),
        "Amount",
        "Amount: not a dollar amount like $12.34 ('$1x.00')",
    ),
    "feb 30": (
        ",".join([*BASE[:2], "2019", "2", "30", *BASE[5:]]),
        "Year/Month/Day",
        "Year/Month/Day: not a calendar date (2019-02-30)",
    ),
    "month 13": (_mangled(3, "13"), "Month", "Month: not a month ('13')"),
    "bad time": (_mangled(5, "25:00"), "Time", "Time: not an HH:MM time ('25:00')"),
    "unknown card": (_mangled(1, "7"), "Card", "unknown card (user 0, card 7)"),
    "unknown error code": (_mangled(13, "Bad Mood"), "Errors?", "Errors?: unknown error code ('Bad Mood')"),
    "non-numeric MCC": (_mangled(12, "53O0"), "MCC", "MCC: not an integer ('53O0')"),
    "bad fraud flag": (_mangled(14, "yes"), "Is Fraud?", "Is Fraud?: expected Yes/No ('yes')"),
    "bad zip": (_mangled(11, "9175O"), "Zip", "Zip: not a US zip ('9175O')"),
    "bad channel": (
        _mangled(7, "Tap Transaction"),
        "Use Chip",
        "Use Chip: not a known channel ('Tap Transaction')",
    ),
    "merchant out of range": (
        _mangled(8, "9" * 19),
        "Merchant Name",
        f"Merchant Name: not a 64-bit integer ('{'9' * 19}')",
    ),
    "empty line": ("", None, "empty line"),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bad=st.dictionaries(st.integers(0, 119), st.sampled_from(sorted(MANGLES)), max_size=25),
    chunk=st.sampled_from([300, 1000, 4096]),
)
def test_mangled_rows_are_quarantined_with_field_reason_and_line(tmp_path, bad: dict, chunk: int) -> None:
    folder = _fresh(tmp_path, "mangled")
    clean_rows = [TRANSACTIONS_ROWS[i % len(TRANSACTIONS_ROWS)] for i in range(120)]
    rows = [MANGLES[bad[i]][0] if i in bad else row for i, row in enumerate(clean_rows)]
    path = folder / "t.csv"
    path.write_text(csv_text(TRANSACTIONS_HEADER, rows))
    reference = folder / "clean.csv"
    reference.write_text(csv_text(TRANSACTIONS_HEADER, clean_rows))

    q = Quarantine(folder / "q")
    chunks = list(iter_transactions(path, q, known_cards=KNOWN_CARDS, chunk_bytes=chunk))
    q.close()
    accepted = pa.concat_tables(chunks) if chunks else TRANSACTIONS_SCHEMA.empty_table()

    good_lines = [i + 2 for i in range(120) if i not in bad]
    assert accepted.column("line").to_pylist() == good_lines
    expected = read_transactions(reference, Quarantine(folder / "q2"))
    assert accepted.equals(
        expected.filter(pc.is_in(expected.column("line"), pa.array(good_lines, pa.int64())))
    )

    records = sorted(read_quarantine(folder / "q").to_pylist(), key=lambda r: r["line"])
    assert [(r["line"], r["field"], r["reason"]) for r in records] == [
        (i + 2, MANGLES[kind][1], MANGLES[kind][2]) for i, kind in sorted(bad.items())
    ]
    for r in records:
        assert r["file"] == "t.csv"
        assert r["raw"] == rows[r["line"] - 2]
    stats = q.stats["t.csv"]
    assert stats.rows_read == 120 == stats.rows_accepted + stats.rows_quarantined
    assert stats.rows_quarantined == len(bad) == q.total


def test_quarantine_counts_group_value_specific_reasons(tmp_path) -> None:
    rows = [_mangled(1, "7"), _mangled(1, "8"), _mangled(12, "x"), TRANSACTIONS_ROWS[0]]
    path = tmp_path / "t.csv"
    path.write_text(csv_text(TRANSACTIONS_HEADER, rows))
    q = Quarantine(tmp_path / "q")
    assert read_transactions(path, q, known_cards=KNOWN_CARDS).num_rows == 1
    assert q.by_reason == {"unknown card": 2, "MCC: not an integer": 1}
    assert q.by_field == {"Card": 2, "MCC": 1}
    q.close()
    assert sorted(read_quarantine(tmp_path / "q").column("reason").to_pylist()) == [
        "MCC: not an integer ('x')",
        "unknown card (user 0, card 7)",
        "unknown card (user 0, card 8)",
    ]


# ---- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reader", "column"),
    [
        (
            [*TRANSACTIONS_HEADER[:6], "Amt", *TRANSACTIONS_HEADER[7:]],
            "transactions",
            "column 7: expected 'Amount'",
        ),
        (list(TRANSACTIONS_HEADER[:-1]), "transactions", "column 15: expected 'Is Fraud?'"),
        ([*CARDS_HEADER[:1], "Card Index", *CARDS_HEADER[2:]], "cards", "column 2: expected 'CARD INDEX'"),
        (list(USERS_HEADER) + ["Extra"], "users", "1 extra column"),
    ],
)
def test_wrong_header_fails_fast(tmp_path, header: list[str], reader: str, column: str) -> None:
    path = tmp_path / f"{reader}.csv"
    path.write_text(",".join(header) + "\n")
    read = {
        "transactions": lambda: list(iter_transactions(path, Quarantine(tmp_path / "q"))),
        "cards": lambda: read_cards(path, Quarantine(tmp_path / "q")),
        "users": lambda: read_users(path, Quarantine(tmp_path / "q")),
    }[reader]
    expected = {"transactions": TRANSACTIONS_HEADER, "cards": CARDS_HEADER, "users": USERS_HEADER}[reader]
    with pytest.raises(SourceFormatError) as err:
        read()
    message = str(err.value)
    assert message.startswith(f"{reader}.csv line 1: ")
    assert ",".join(expected) in message and column in message


def test_header_error_never_echoes_a_customer_record(tmp_path) -> None:
    path = tmp_path / "sd254_users.csv"
    path.write_text("\n".join(USERS_ROWS) + "\n")  # header missing: the first line is a person
    with pytest.raises(SourceFormatError) as err:
        read_users(path, Quarantine(tmp_path / "q"))
    assert not any(value in str(err.value) for value in PII_VALUES)


# ---- personal data never reaches the quarantine -----------------------------------------------


def _replace(row: str, index: int, value: str) -> str:
    import csv

    fields = next(csv.reader([row]))
    fields[index] = value
    return ",".join(f'"{f}"' if "," in f else f for f in fields)


def test_no_personal_value_in_quarantine_of_users_and_cards(tmp_path) -> None:
    users_rows = [
        _replace(USERS_ROWS[0], 10, "9175X"),  # Zipcode
        _replace(USERS_ROWS[1], 11, "north"),  # Latitude
        _replace(USERS_ROWS[0], 3, "19x6"),  # Birth Year
        USERS_ROWS[1] + ",extra",  # wrong column count: the whole row is personal data
        USERS_ROWS[2],
    ]
    cards_rows = [
        _replace(CARDS_ROWS[0], 4, "4000123412341234999"),  # Card Number
        _replace(CARDS_ROWS[1], 5, "13/2024"),  # Expires
        _replace(CARDS_ROWS[0], 6, "6234"),  # CVV
        CARDS_ROWS[1][:-3],  # wrong column count
        CARDS_ROWS[2],
        CARDS_ROWS[2],  # duplicate card
        "99" + CARDS_ROWS[3][1:],  # unknown user
    ]
    users_path = tmp_path / "sd254_users.csv"
    cards_path = tmp_path / "sd254_cards.csv"
    users_path.write_text(csv_text(USERS_HEADER, users_rows))
    cards_path.write_text(csv_text(CARDS_HEADER, cards_rows))
    q = Quarantine(tmp_path / "q")
    users = read_users(users_path, q)
    cards = read_cards(cards_path, q, known_users={0, 1, 2})
    q.close()
    assert users.column("user").to_pylist() == [4]
    assert cards.column("line").to_pylist() == [6]

    records = sorted(
        read_quarantine(tmp_path / "q").to_pylist(), key=lambda r: (r["file"] != "sd254_users.csv", r["line"])
    )
    assert [(r["file"], r["line"], r["field"]) for r in records] == [
        ("sd254_users.csv", 2, "Zipcode"),
        ("sd254_users.csv", 3, "Latitude"),
        ("sd254_users.csv", 4, "Birth Year"),
        ("sd254_users.csv", 5, None),
        ("sd254_cards.csv", 2, "Card Number"),
        ("sd254_cards.csv", 3, "Expires"),
        ("sd254_cards.csv", 4, "CVV"),
        ("sd254_cards.csv", 5, None),
        ("sd254_cards.csv", 7, "CARD INDEX"),
        ("sd254_cards.csv", 8, "User"),
    ]
    assert records[-2]["reason"] == "duplicate card (user 1, card 0)"
    assert records[-1]["reason"] == "unknown user (user 99)"
    secrets = [
        *PII_VALUES,
        "9175X",
        "north",
        "19x6",
        "4000123412341234999",
        "13/2024",
        "6234",
        "1938",
        "Ann Poe",
    ]
    for r in records:
        assert r["raw"] is None
        assert not any(s in r["reason"] for s in secrets), r["reason"]
    for stats in q.stats.values():
        assert stats.rows_read == stats.rows_accepted + stats.rows_quarantined
    assert q.stats["sd254_users.csv"].rows_read == 5 and q.stats["sd254_cards.csv"].rows_read == 7


# ---- locating files ---------------------------------------------------------------------------


def test_find_source_files_published_names_and_per_user_files(tmp_path) -> None:
    users, cards, tx = write_samples(tmp_path)
    found = find_source_files(tmp_path)
    assert (found.users, found.cards, found.transactions) == (users, cards, (tx,))

    per_user = tmp_path / "per-user"
    per_user.mkdir()
    for n in (10, 2, 1):
        (per_user / f"User{n}_credit_card_transactions.csv").write_text(",".join(TRANSACTIONS_HEADER) + "\n")
    found = find_source_files(per_user)
    assert found.users is None and found.cards is None
    assert [p.name for p in found.transactions] == [
        f"User{n}_credit_card_transactions.csv" for n in (1, 2, 10)
    ]

    alias = tmp_path / "alias"
    alias.mkdir()
    (alias / "card_transaction.v1.csv").write_text(",".join(TRANSACTIONS_HEADER) + "\n")
    assert find_source_files(alias).transactions == (alias / "card_transaction.v1.csv",)


def test_segments_read_separately_give_the_same_rows_lines_and_quarantine(tmp_path):
    """Reading a file as independent byte ranges (parallel workers) changes nothing in what is read."""
    from cdp.ibm.reader import iter_transactions, plan_segments
    from cdp.ibm.schema import TRANSACTIONS_HEADER

    rows = list(TRANSACTIONS_ROWS) * 40
    rows[7] = "0,0,2002,9,1,06:21,$13x.09,Swipe Transaction,1,La Verne,CA,91750.0,5300,,No"
    rows[55] = "0,0,2002,9,1,06:21"
    rows[130] = ""
    path = tmp_path / "t.csv"
    path.write_text(csv_text(TRANSACTIONS_HEADER, rows))
    whole_q = Quarantine(tmp_path / "q1")
    whole = pa.concat_tables(list(iter_transactions(path, whole_q, KNOWN_CARDS)))
    segments = plan_segments(path, 700)
    assert len(segments) > 5
    assert segments[0].first_line == 2 and segments[-1].end == path.stat().st_size
    part_q = Quarantine(tmp_path / "q2")
    parts = pa.concat_tables(
        [t for seg in segments for t in iter_transactions(path, part_q, KNOWN_CARDS, segment=seg)]
    )
    assert parts.equals(whole)
    whole_q.close(), part_q.close()
    key = ["line", "field", "reason"]
    got = read_quarantine(tmp_path / "q2").select(key).sort_by("line").to_pylist()
    want = read_quarantine(tmp_path / "q1").select(key).sort_by("line").to_pylist()
    assert got == want and {r["line"] for r in got} == {9, 57, 132}
