"""IBM transactions file: our column-wise writer and validating reader against plain pandas CSV I/O.

Both sides handle the same ~2M rows. Ours writes the byte-exact IBM format and reads it back with full
validation into the clean schema; the baseline is pandas `to_csv` / `read_csv` of the same table with
no format work and no validation. Ratios are ours / baseline in rows per second (above 1 = faster).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.harness import measure, print_table, write_result
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import iter_transactions
from cdp.ibm.schema import ERROR_CODES, TRANSACTIONS_SCHEMA
from cdp.ibm.writer import TransactionsWriter, format_transactions

ROWS = 2_000_000
USERS = 2_000


def transactions_table(rows: int = ROWS, seed: int = 7) -> pa.Table:
    """A clean transactions table with the real data's shapes (channels, errors, refunds, zips)."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(np.array(["swipe", "chip", "online"]), rows, p=[0.631, 0.258, 0.111])
    online = channel == "online"
    foreign = ~online & (rng.random(rows) < 0.02)
    amount = np.round(rng.lognormal(3.5, 1.2, rows) * 100).astype(np.int64)
    amount[rng.random(rows) < 0.005] *= -1
    cities = np.array(["La Verne", "Monterey Park", "Providence", "Boston", "Rome", "Washington, D.C."])
    city = np.where(online, "ONLINE", rng.choice(cities, rows))
    state = pd.array(np.where(online, None, np.where(foreign, "Italy", "CA")), dtype="string")
    zips = np.char.zfill(rng.integers(501, 99950, rows).astype(str), 5)
    zip_ = pd.array(np.where(online | foreign, None, zips), dtype="string")
    has_error = rng.random(rows) < 0.016
    codes = list(ERROR_CODES)
    errors = [
        [codes[int(k)]] if e else []
        for e, k in zip(has_error, rng.integers(0, len(codes), rows), strict=True)
    ]
    for i in np.flatnonzero(has_error)[::10]:  # a tenth of error rows carry two codes
        errors[i] = [codes[0], codes[3]]
    start = np.datetime64("1991-01-01T00:00", "m")
    minutes = np.sort(rng.integers(0, (np.datetime64("2020-02-28T23:59", "m") - start).astype(int), rows))
    return pa.table(
        {
            "user": pa.array(np.sort(rng.integers(0, USERS, rows)).astype(np.int32)),
            "card": pa.array(rng.integers(0, 9, rows).astype(np.int8)),
            "ts": pa.array((start + minutes).astype("datetime64[s]")),
            "amount_cents": pa.array(amount),
            "channel": pa.array(channel),
            "merchant_id": pa.array(rng.integers(-(2**63), 2**63 - 1, rows, dtype=np.int64)),
            "merchant_city": pa.array(city),
            "merchant_state": pa.array(state),
            "zip": pa.array(zip_),
            "mcc": pa.array(rng.integers(1711, 9402, rows).astype(np.int16)),
            "errors": pa.array(errors, pa.list_(pa.string())),
            "is_fraud": pa.array(rng.random(rows) < 0.0012),
        },
        schema=TRANSACTIONS_SCHEMA.remove(0),
    )


def main() -> None:
    table = transactions_table()
    frame = table.to_pandas()
    known_cards = {(u, c) for u in range(USERS) for c in range(9)}
    work = Path(tempfile.mkdtemp(prefix="bench-reader-"))
    ours_path, theirs_path = work / "ours.csv", work / "pandas.csv"
    try:
        fmt = measure("format (ours)", lambda: {"bytes": len(format_transactions(table))})

        def write_ours() -> dict:
            with TransactionsWriter(ours_path) as writer:
                writer.write(table)
            return {"bytes": ours_path.stat().st_size}

        def read_ours() -> dict:
            quarantine = Quarantine(work / "quarantine")
            rows = sum(chunk.num_rows for chunk in iter_transactions(ours_path, quarantine, known_cards))
            quarantine.close()
            return {"rows": rows, "quarantined": quarantine.total}

        write = measure("write (ours)", write_ours)
        read = measure("read + validate (ours)", read_ours)
        write_pd = measure("write (pandas to_csv)", lambda: frame.to_csv(theirs_path, index=False) or {})
        read_pd = measure("read (pandas read_csv)", lambda: {"rows": len(pd.read_csv(theirs_path))})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    assert read.extra["rows"] == ROWS and read.extra["quarantined"] == 0
    rate = {m.label: ROWS / m.seconds for m in (fmt, write, read, write_pd, read_pd)}
    rows = [
        {
            "step": "write",
            "ours rows/s": rate[write.label],
            "pandas rows/s": rate[write_pd.label],
            "ratio": rate[write.label] / rate[write_pd.label],
        },
        {
            "step": "read",
            "ours rows/s": rate[read.label],
            "pandas rows/s": rate[read_pd.label],
            "ratio": rate[read.label] / rate[read_pd.label],
        },
    ]
    print_table(f"IBM transactions, {ROWS:,} rows (format only: {rate[fmt.label]:,.0f} rows/s)", rows)
    full_rows = 24_386_900
    write_result(
        "reader",
        {
            "rows": ROWS,
            "file_bytes": write.extra["bytes"],
            "rows_per_second": rate,
            "seconds": {m.label: m.seconds for m in (fmt, write, read, write_pd, read_pd)},
            "peak_memory_bytes": {
                m.label: m.peak_memory_bytes for m in (fmt, write, read, write_pd, read_pd)
            },
            "ratio_write": rows[0]["ratio"],
            "ratio_read": rows[1]["ratio"],
            "projected_full_scale_seconds": {
                "format": full_rows / rate[fmt.label],
                "write": full_rows / rate[write.label],
                "read": full_rows / rate[read.label],
            },
        },
    )


if __name__ == "__main__":
    main()
