"""A small, deterministic lake for the dashboard tests: transactions, the scored stream and its alerts,
written straight into the lake (no generator, no models) so figures can be checked against SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from cdp.backends import Backends
from cdp.lake.tables import TRANSACTIONS
from cdp.lake.writer import LakeWriter
from inference.streaming.scored import FRAUD_ALERTS, TRANSACTIONS_SCORED, alerts_table, scored_table

CHANNELS = ("chip", "swipe", "online")
STATES = ("CA", "NV", "TX", None)
MCCS = (5411, 5812, 4829, 5912)
START = datetime(2019, 6, 1)


def transactions(n: int, seed: int = 3, start: datetime = START, days: int = 120) -> list[dict]:
    """`n` protected transaction rows over `days` days (about 2% fraud)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ts = start + timedelta(seconds=int(rng.integers(0, days * 86_400)))
        online = i % 3 == 2
        rows.append(
            {
                "txn_id": f"tx{seed}-{i}",
                "user_token": f"usr_{i % 50:04d}",
                "card_token": f"crd_{i % 80:04d}",
                "ts": ts,
                "amount_cents": int(rng.integers(100, 50_000)),
                "channel": CHANNELS[i % 3],
                "merchant_id": int(i % 17),
                "merchant_city": "ONLINE" if online else "Reno",
                "merchant_state": None if online else STATES[i % 3],
                "zip": None,
                "mcc": MCCS[i % len(MCCS)],
                "errors": None,
                "is_fraud": bool(rng.random() < 0.02),
                "event_seq": i + 1,
                "year": ts.year,
                "month": ts.month,
            }
        )
    return rows


def build_lake(backends: Backends, n: int = 3_000, scored: int = 1_000, seed: int = 3) -> None:
    """Land `n` transactions; the newest `scored` of them also scored (two model versions) with alerts."""
    import pyarrow as pa

    bucket = backends.settings.lake_bucket
    writer = LakeWriter(backends.object_store, bucket)
    rows = sorted(transactions(n, seed), key=lambda r: r["ts"])
    writer.write_chunk(TRANSACTIONS, pa.Table.from_pylist(rows, schema=TRANSACTIONS.schema), f"t{seed}")
    backends.catalog.register_table(TRANSACTIONS.info(bucket))
    if not scored:
        return
    rng = np.random.default_rng(seed + 1)
    stream = rows[-scored:]
    half = len(stream) // 2
    for version, part in ((1, stream[:half]), (2, stream[half:])):
        probabilities = [float(min(1.0, rng.random() * 0.3 + (0.6 if r["is_fraud"] else 0.0))) for r in part]
        reasons = [
            [("amount_vs_card_median", 0.9), ("velocity_24h", 0.4)] if p >= 0.5 else [] for p in probabilities
        ]
        table = scored_table(
            part, [{"velocity_24h": 1.0}] * len(part), probabilities, reasons, 0.5, "cdp-fraud", version,
            datetime(2026, 1, 1),
        )  # fmt: skip
        writer.write_chunk(TRANSACTIONS_SCORED, table, f"v{version}")
        writer.write_chunk(FRAUD_ALERTS, alerts_table(table), f"v{version}")
    backends.catalog.register_table(TRANSACTIONS_SCORED.info(bucket))
    backends.catalog.register_table(FRAUD_ALERTS.info(bucket))
