"""The stream's record format: one protected transaction (tokens, no direct identifiers) as JSON.

The same columns as the lake's transactions table, so a consumer can land records unchanged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pyarrow as pa

from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA

RECORD_FIELDS = [n for n in TRANSACTIONS_LAKE_SCHEMA.names if n not in ("year", "month")]


def encode(row: dict[str, Any]) -> bytes:
    """One lake row (dict) -> record bytes."""
    out = {k: row[k] for k in RECORD_FIELDS}
    out["ts"] = row["ts"].isoformat(timespec="seconds")
    return json.dumps(out, separators=(",", ":"), sort_keys=True).encode()


def decode(data: bytes) -> dict[str, Any]:
    """Record bytes -> one lake row (dict with `ts` as datetime, partition columns added)."""
    row = json.loads(data)
    missing = [k for k in RECORD_FIELDS if k not in row]
    if missing:
        raise ValueError(f"stream record lacks fields {missing}")
    ts = datetime.fromisoformat(row["ts"])
    row["ts"] = ts
    row["year"], row["month"] = ts.year, ts.month
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=TRANSACTIONS_LAKE_SCHEMA)
