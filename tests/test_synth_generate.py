"""`generate` end to end on a few customers: determinism, file structure, ground-truth alignment, PII."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from cdp.ibm.schema import CARDS_FILE, CARDS_HEADER, TRANSACTIONS_FILE, TRANSACTIONS_HEADER, USERS_FILE
from cdp.synth.generator import generate
from cdp.synth.luhn import is_luhn_valid

USERS = 3
FILES = (
    USERS_FILE,
    CARDS_FILE,
    TRANSACTIONS_FILE,
    "core_banking/contacts.csv",
    "ground_truth/transactions.parquet",
    "ground_truth/users.parquet",
    "ground_truth/episodes.parquet",
    "ground_truth/manifest.json",
)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synth") / "a"
    calls: list[tuple[int, int]] = []
    summary = generate(folder, USERS, seed=11, workers=1, progress=lambda d, t: calls.append((d, t)))
    assert summary.users == USERS and summary.transactions > 1000
    assert calls[-1] == (USERS, USERS)
    return folder


def _read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_same_seed_same_bytes_whatever_the_workers(out, tmp_path, monkeypatch):
    monkeypatch.setattr("cdp.synth.generator.USERS_PER_BATCH", 1)  # several batches in flight, in order
    again = tmp_path / "b"
    generate(again, USERS, seed=11, workers=2)
    for name in FILES:
        if name.endswith(".parquet"):
            assert pq.read_table(out / name).equals(pq.read_table(again / name)), name
        else:
            assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_different_seed_differs(out, tmp_path):
    other = tmp_path / "c"
    generate(other, USERS, seed=12, workers=1)
    for name in (USERS_FILE, CARDS_FILE, TRANSACTIONS_FILE):
        assert (out / name).read_bytes() != (other / name).read_bytes(), name


def test_headers_and_contacts(out):
    assert tuple(_read_rows(out / TRANSACTIONS_FILE)[0]) == TRANSACTIONS_HEADER
    assert tuple(_read_rows(out / CARDS_FILE)[0]) == CARDS_HEADER
    contacts = _read_rows(out / "core_banking/contacts.csv")
    assert contacts[0] == ["User", "Email"]
    assert [r[0] for r in contacts[1:]] == [str(u) for u in range(USERS)]
    assert all("@" in r[1] for r in contacts[1:])


def test_cards_are_luhn_valid_with_brand_prefixes(out):
    rows = _read_rows(out / CARDS_FILE)[1:]
    users = _read_rows(out / USERS_FILE)[1:]
    assert len(rows) == sum(int(u[-1]) for u in users)  # Num Credit Cards = the user's card count
    for row in rows:
        brand, number, cvv = row[2], row[4], row[6]
        assert is_luhn_valid(number)
        assert len(cvv) == 3 and row[12] == "No"
        if brand == "Amex":
            assert len(number) == 15 and number[:2] in ("34", "37")
        else:
            assert len(number) == 16
        if brand == "Visa":
            assert number[0] == "4"


def test_transactions_are_ordered_by_user_card_time(out):
    t = pacsv.read_csv(
        out / TRANSACTIONS_FILE, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)
    )
    keys = list(
        zip(
            t.column("User").to_pylist(),
            t.column("Card").to_pylist(),
            t.column("Year").to_pylist(),
            t.column("Month").to_pylist(),
            t.column("Day").to_pylist(),
            t.column("Time").to_pylist(),
            strict=True,
        )
    )
    assert keys == sorted(keys)


def test_ground_truth_lines_match_the_csv(out):
    rows = _read_rows(out / TRANSACTIONS_FILE)
    truth = pq.read_table(out / "ground_truth/transactions.parquet").to_pylist()
    assert len(truth) == len(rows) - 1
    assert [t["line"] for t in truth] == list(range(2, len(rows) + 1))
    for t in truth[:: max(1, len(truth) // 500)]:
        row = rows[t["line"] - 1]
        assert (int(row[0]), int(row[1])) == (t["user"], t["card"])
        assert row[14] == ("Yes" if t["is_fraud_drawn"] and t["label_recorded"] else "No")
        assert 0.0 < t["fraud_probability"] < 1.0
        assert (t["episode_id"] is not None) == t["is_attack"]


def test_manifest_and_users_truth(out):
    manifest = json.loads((out / "ground_truth/manifest.json").read_text())
    assert manifest["seed"] == 11 and manifest["users"] == USERS
    assert manifest["rows"]["transactions"] == len(_read_rows(out / TRANSACTIONS_FILE)) - 1
    assert "2019-11" in manifest["unlabelled_months"]
    episodes = pq.read_table(out / "ground_truth/episodes.parquet")
    assert manifest["rows"]["attack_episodes"] == episodes.num_rows >= USERS
    assert manifest["rows"]["attack_rows"] == sum(episodes.column("rows").to_pylist())
    assert manifest["fraud_score"]["coefficients"]["intercept"] < 0
    assert len(manifest["personas"]) >= 4
    users = pq.read_table(out / "ground_truth/users.parquet").to_pylist()
    assert [u["user"] for u in users] == list(range(USERS))
    assert {u["persona"] for u in users} <= {p["name"] for p in manifest["personas"]}
    assert all(u["clv_expected"] > 0 for u in users)


def test_no_clear_pii_outside_the_customer_files(out):
    users = _read_rows(out / USERS_FILE)[1:]
    cards = _read_rows(out / CARDS_FILE)[1:]
    contacts = _read_rows(out / "core_banking/contacts.csv")[1:]
    secrets = {u[0] for u in users} | {u[6] for u in users} | {c[4] for c in cards} | {c[1] for c in contacts}
    for name in ("ground_truth/transactions.parquet", "ground_truth/users.parquet"):
        table = pq.read_table(out / name)
        text = " ".join(str(v) for col in table.columns for v in col.to_pylist()[:20000])
        assert not any(s in text for s in secrets), name
        assert not {"person", "card_number", "email", "address", "cvv"} & set(table.column_names)
    manifest = (out / "ground_truth/manifest.json").read_text()
    assert not any(s in manifest for s in secrets)
    transactions = (out / TRANSACTIONS_FILE).read_text()
    assert not any(s in transactions for s in secrets)


def test_a_short_custom_range_stays_inside_its_dates(tmp_path):
    from datetime import date

    folder = tmp_path / "short"
    start, end = date(2017, 6, 1), date(2019, 12, 31)
    summary = generate(folder, 2, seed=3, start=start, end=end, clv_cutoff=date(2019, 1, 1), workers=1)
    assert summary.transactions > 0
    rows = _read_rows(folder / TRANSACTIONS_FILE)[1:]
    days = {date(int(r[2]), int(r[3]), int(r[4])) for r in rows}
    assert start <= min(days) and max(days) <= end
    manifest = json.loads((folder / "ground_truth/manifest.json").read_text())
    assert {"2019-11", "2019-12"} <= set(manifest["unlabelled_months"])
    assert all("2020" not in m for m in manifest["unlabelled_months"])
