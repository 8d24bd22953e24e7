"""Loading the core-banking store: 2k customers + 6k cards + 200k transactions into the SQLite adapter.

Baseline: raw `sqlite3.executemany` of the same rows, already turned into SQLite values, into plain
tables with the same columns (no keys, no checks) with the same pragmas, one transaction per table: the
floor any loader pays. The store also validates and types every field, derives transaction ids, keeps
primary keys (idempotency) and clusters transactions by card and time. Ratio = store rows/s / baseline
rows/s. A second put of the same transactions (all already known) is timed as well.
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import measure, print_table, write_result
from cdp.oltp.records import CARD, CUSTOMER, TRANSACTION
from cdp.oltp.sqlite import SqliteOltpStore

CUSTOMERS, CARDS, TRANSACTIONS = 2_000, 6_000, 200_000
ERRORS = ("Bad PIN", "Insufficient Balance", "Technical Glitch", "Bad CVV")


def make_rows(seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Deterministic rows in the clean schemas (Python values, as `pyarrow.Table.to_pylist()` gives)."""
    rng = random.Random(seed)
    customers = [
        dict(
            line=u + 2,
            user=u,
            person=f"Person {u}",
            current_age=rng.randint(18, 90),
            retirement_age=67,
            birth_year=rng.randint(1930, 2002),
            birth_month=rng.randint(1, 12),
            gender=rng.choice(["Female", "Male"]),
            address=f"{rng.randint(1, 9999)} Oak Lane",
            apartment=None if rng.random() < 0.7 else "2B",
            city="Springfield",
            state="CA",
            zipcode=f"{rng.randint(1000, 99999):05d}",
            latitude=round(rng.uniform(25, 48), 2),
            longitude=round(rng.uniform(-124, -67), 2),
            per_capita_income=rng.randint(10_000, 60_000),
            yearly_income=rng.randint(0, 300_000),
            total_debt=rng.randint(0, 400_000),
            fico_score=rng.randint(480, 850),
            num_credit_cards=3,
            email=f"user{u}@example.com",
        )
        for u in range(CUSTOMERS)
    ]
    cards = [
        dict(
            line=i + 2,
            user=i // 3,
            card_index=i % 3,
            card_brand=rng.choice(["Visa", "Mastercard"]),
            card_type="Debit",
            card_number_enc="1" + rng.randbytes(44).hex()[:64],  # ciphertext-sized (the loader encrypts)
            pan_last4=f"{rng.randrange(10_000):04d}",
            expires=date(rng.randint(2020, 2025), rng.randint(1, 12), 1),
            has_chip=rng.random() < 0.9,
            cards_issued=1,
            credit_limit=rng.randint(500, 30_000),
            acct_open_date=date(rng.randint(1995, 2019), rng.randint(1, 12), 1),
            year_pin_last_changed=rng.randint(2000, 2020),
            card_on_dark_web=False,
        )
        for i in range(CARDS)
    ]
    transactions = []
    per_card = TRANSACTIONS // CARDS + 1
    for c in cards:  # file order: by user, card, then time
        ts = datetime(2010, 1, 1) + timedelta(minutes=rng.randrange(500_000))
        for _ in range(per_card):
            if len(transactions) == TRANSACTIONS:
                break
            ts += timedelta(minutes=rng.randrange(1, 5_000))
            online = rng.random() < 0.1
            transactions.append(
                dict(
                    line=len(transactions) + 2,
                    user=c["user"],
                    card=c["card_index"],
                    ts=ts,
                    amount_cents=rng.randint(-5_000, 50_000),
                    channel="online" if online else "chip",
                    merchant_id=rng.randint(-(2**63), 2**63 - 1),
                    merchant_city="ONLINE" if online else "Rome",
                    merchant_state=None if online else "Italy",
                    zip=None,
                    mcc=rng.choice([5411, 5812, 3640]),
                    errors=[rng.choice(ERRORS)] if rng.random() < 0.016 else [],
                    is_fraud=rng.random() < 0.002,
                )
            )
    return {"customers": customers, "cards": cards, "transactions": transactions}


def _native(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return json.dumps(value)
    return value


def load_raw(path: Path, tuples: dict[str, list[tuple]], columns: dict[str, tuple[str, ...]]) -> None:
    """The baseline: plain tables, one `executemany` per table in one transaction each."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for table, rows in tuples.items():
        cols = columns[table]
        conn.execute(f"CREATE TABLE {table} ({', '.join(f'{c!r}' for c in cols)})")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", rows)
        conn.execute("COMMIT")
    conn.close()


def main() -> dict[str, Any]:
    rows = make_rows()
    total = sum(len(v) for v in rows.values())
    columns = {"customers": CUSTOMER.names, "cards": CARD.names, "transactions": TRANSACTION.names[1:]}
    tuples = {t: [tuple(_native(r[c]) for c in columns[t]) for r in rs] for t, rs in rows.items()}

    with tempfile.TemporaryDirectory() as tmp:
        raw = measure("raw sqlite3 executemany", lambda: load_raw(Path(tmp) / "raw.sqlite3", tuples, columns))
        store = SqliteOltpStore(Path(tmp) / "oltp.sqlite3")
        loaded: dict[str, int] = {}

        def load_store() -> dict[str, int]:
            loaded["customers"] = store.upsert_customers(rows["customers"])
            loaded["cards"] = store.upsert_cards(rows["cards"])
            loaded["transactions"] = store.put_transactions(rows["transactions"])
            return dict(loaded)

        ours = measure("SqliteOltpStore", load_store)
        again = measure(
            "put_transactions again (all known)",
            lambda: {"new": store.put_transactions(rows["transactions"])},
        )
        counts = store.counts()
        store.close()

    assert loaded == {"customers": CUSTOMERS, "cards": CARDS, "transactions": TRANSACTIONS}, loaded
    assert again.extra["new"] == 0 and counts.transactions == TRANSACTIONS
    table = [
        {
            "load": m.label,
            "rows": n,
            "seconds": m.seconds,
            "rows_per_s": n / m.seconds,
            "peak_mb": m.peak_memory_bytes / 2**20,
        }
        for m, n in ((raw, total), (ours, total), (again, TRANSACTIONS))
    ]
    ratio = table[1]["rows_per_s"] / table[0]["rows_per_s"]
    print_table(f"OLTP load (store / raw rows/s = {ratio:.2f})", table)
    result = {
        "rows": {"customers": CUSTOMERS, "cards": CARDS, "transactions": TRANSACTIONS},
        "runs": table,
        "ratio_store_vs_raw_rows_per_s": round(ratio, 3),
        "reput_rows_per_s": round(table[2]["rows_per_s"]),
    }
    write_result("oltp", result)
    return result


if __name__ == "__main__":
    main()
