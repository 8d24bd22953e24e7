"""`scored_table` / `alerts_table` (the stream handler's column-by-column path) equal the row-by-row
`to_table(scored_row(...))` / `to_table(alert_rows(...))` on varied batches: nulls, empty and missing
reasons, probabilities exactly at the threshold, several months (partitions), microseconds in `scored_at`."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from inference.streaming.scored import (
    ALERTS_SCHEMA,
    FRAUD_ALERTS,
    SCORED_SCHEMA,
    TRANSACTIONS_SCORED,
    alert_rows,
    alerts_table,
    scored_row,
    scored_table,
    to_table,
)

THRESHOLD = 0.5


def batch(seed: int, n: int) -> tuple[list[dict], list[dict], list[float], list[list[tuple[str, float]]]]:
    rng = random.Random(seed)
    start = datetime(2019, 11, 28, 22, 0)
    transactions, features, probabilities, reasons = [], [], [], []
    for i in range(n):
        ts = start + timedelta(hours=7 * i)
        transactions.append(
            {
                "txn_id": f"t-{seed}-{i}",
                "user_token": "usr_a",
                "card_token": rng.choice(("crd_a", "crd_b")),
                "ts": ts,
                "amount_cents": rng.randint(-500, 90_000),
                "channel": rng.choice(("chip", "online", None)),
                "merchant_id": rng.randint(1, 2**62),
                "merchant_city": rng.choice(("Reno", None)),
                "merchant_state": rng.choice(("NV", None)),
                "zip": rng.choice(("89501", None)),
                "mcc": rng.choice((5411, 7995)),
                "errors": rng.choice((None, [], ["Bad CVV", "Bad PIN"])),
                "is_fraud": rng.random() < 0.1,
                "event_seq": i + 1,
                "year": ts.year,
                "month": ts.month,
            }
        )
        features.append(
            {
                "amount_cents": transactions[-1]["amount_cents"],
                "amount_zscore": rng.choice((None, rng.random())),
                "mcc_group": rng.choice(("grocery", None)),
                "is_online": rng.random() < 0.5,
                "n": rng.randint(0, 9),
            }
        )
        probabilities.append(rng.choice((rng.random(), THRESHOLD, 0.0, 1.0)))
        reasons.append([(f"f{j}", rng.random()) for j in range(rng.randint(0, 3))])
    return transactions, features, probabilities, reasons


@pytest.mark.parametrize(("seed", "n"), [(1, 1), (2, 40), (3, 250), (4, 0)])
def test_scored_and_alert_tables_equal_the_row_by_row_tables(seed, n):
    transactions, features, probabilities, reasons = batch(seed, n)
    scored_at = datetime(2026, 11, 28, 17, 1, 2, 345678)
    rows = [
        scored_row(t, f, p, THRESHOLD, r, "cdp-fraud", 3, scored_at)
        for t, f, p, r in zip(transactions, features, probabilities, reasons, strict=True)
    ]
    want = to_table(rows, TRANSACTIONS_SCORED)
    got = scored_table(transactions, features, probabilities, reasons, THRESHOLD, "cdp-fraud", 3, scored_at)
    assert got.schema == SCORED_SCHEMA
    assert got.equals(want)
    want_alerts = to_table(alert_rows(rows), FRAUD_ALERTS)
    got_alerts = alerts_table(got)
    assert got_alerts.schema == ALERTS_SCHEMA
    assert got_alerts.equals(want_alerts)
    if n > 10:  # the batches exercise what they are for
        assert 0 < got_alerts.num_rows < n and THRESHOLD in probabilities
        assert len({(t["year"], t["month"]) for t in transactions}) > 1


def test_scored_table_needs_one_score_per_transaction():
    transactions, features, probabilities, reasons = batch(5, 3)
    with pytest.raises(ValueError, match="one feature row"):
        scored_table(
            transactions, features, probabilities[:2], reasons, THRESHOLD, "m", 1, datetime(2026, 1, 1)
        )
