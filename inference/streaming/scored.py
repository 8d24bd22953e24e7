"""The real-time path's lake tables: every scored transaction, and the alerts among them.

`transactions_scored` holds the protected transaction (the stream record's columns), its online features
as one JSON object (so adding a feature to the fraud view never changes the table's schema), the feature
view's version and the SHA-256 of that JSON (`feature_hash`: what `cdp explain` checks a recomputation
against), the fraud probability, the threshold it was compared with, the top reason codes and the model
version that scored it: enough to reproduce the decision later.
`fraud_alerts` holds one row per scored transaction whose probability reached the threshold.
Both are partitioned like `transactions` (by the transaction's year and month).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from cdp.lake.tables import PARTITION_KEYS, TRANSACTIONS_LAKE_SCHEMA, LakeTable
from cdp.streaming.records import RECORD_FIELDS

REASON_TYPE = pa.list_(pa.struct([("feature", pa.string()), ("contribution", pa.float64())]))

_TRANSACTION_FIELDS = [TRANSACTIONS_LAKE_SCHEMA.field(n) for n in RECORD_FIELDS]
_PARTITION_FIELDS = [TRANSACTIONS_LAKE_SCHEMA.field(n) for n in PARTITION_KEYS]
_SCORE_FIELDS = [
    pa.field("fraud_probability", pa.float64()),
    pa.field("threshold", pa.float64()),
    pa.field("is_alert", pa.bool_()),
    pa.field("reasons", REASON_TYPE),
    pa.field("model", pa.string()),
    pa.field("model_version", pa.int32()),
    pa.field("scored_at", pa.timestamp("s")),
]

_REPRODUCTION_FIELDS = [pa.field("feature_view", pa.string()), pa.field("feature_hash", pa.string())]

SCORED_SCHEMA = pa.schema(
    [
        *_TRANSACTION_FIELDS,
        pa.field("features", pa.string()),
        *_REPRODUCTION_FIELDS,
        *_SCORE_FIELDS,
        *_PARTITION_FIELDS,
    ]
)

_ALERT_TRANSACTION_COLUMNS = ("txn_id", "user_token", "card_token", "ts", "amount_cents", "mcc")
ALERTS_SCHEMA = pa.schema(
    [
        *(TRANSACTIONS_LAKE_SCHEMA.field(n) for n in _ALERT_TRANSACTION_COLUMNS),
        *_SCORE_FIELDS,
        *_PARTITION_FIELDS,
    ]
)

TRANSACTIONS_SCORED = LakeTable("transactions_scored", SCORED_SCHEMA, PARTITION_KEYS)
FRAUD_ALERTS = LakeTable("fraud_alerts", ALERTS_SCHEMA, PARTITION_KEYS)

# Stream events refused before scoring (dated outside the accepted window): tokens, time and the reason.
QUARANTINE_SCHEMA = pa.schema(
    [
        *(TRANSACTIONS_LAKE_SCHEMA.field(n) for n in ("txn_id", "card_token", "ts")),
        pa.field("reason", pa.string()),
        pa.field("quarantined_at", pa.timestamp("s")),
    ]
)
STREAM_QUARANTINE = LakeTable("stream_quarantine", QUARANTINE_SCHEMA)


def quarantine_table(rows: Sequence[Mapping[str, Any]], reasons: Sequence[str], when: datetime) -> pa.Table:
    """The `stream_quarantine` rows of refused events (no amounts, merchants or user tokens)."""
    return pa.table(
        {
            "txn_id": [r["txn_id"] for r in rows],
            "card_token": [r["card_token"] for r in rows],
            "ts": [r["ts"] for r in rows],
            "reason": list(reasons),
            "quarantined_at": [when.replace(microsecond=0)] * len(rows),
        },
        schema=QUARANTINE_SCHEMA,
    )


def features_json(features: Mapping[str, Any]) -> str:
    """The online features of one transaction as a compact JSON object (keys sorted)."""
    return json.dumps(dict(features), separators=(",", ":"), sort_keys=True, default=str)


def feature_hash(features_text: str) -> str:
    """`sha256:<hex>` of a transaction's features JSON (`features_json`)."""
    return "sha256:" + hashlib.sha256(features_text.encode("utf-8")).hexdigest()


def fraud_view_version() -> str:
    """The version of the feature view the stream's features come from."""
    from features.fraud import FRAUD_VIEW
    from features.version import view_version

    return view_version(FRAUD_VIEW.name)


def scored_row(
    transaction: Mapping[str, Any],
    features: Mapping[str, Any],
    probability: float,
    threshold: float,
    reasons: Sequence[tuple[str, float]],
    model: str,
    model_version: int,
    scored_at: datetime,
    feature_view: str | None = None,
) -> dict[str, Any]:
    """One `transactions_scored` row from a decoded stream record and its score (`feature_view`: the
    version of the view the features come from, by default the fraud view's current one)."""
    row = {name: transaction[name] for name in RECORD_FIELDS}
    text = features_json(features)
    row.update(
        features=text,
        feature_view=feature_view or fraud_view_version(),
        feature_hash=feature_hash(text),
        fraud_probability=float(probability),
        threshold=float(threshold),
        is_alert=probability >= threshold,
        reasons=[{"feature": f, "contribution": float(c)} for f, c in reasons],
        model=model,
        model_version=int(model_version),
        scored_at=scored_at.replace(microsecond=0),
        year=transaction["ts"].year,
        month=transaction["ts"].month,
    )
    return row


def scored_table(
    transactions: Sequence[Mapping[str, Any]],
    features: Sequence[Mapping[str, Any]],
    probabilities: Sequence[float],
    reasons: Sequence[Sequence[tuple[str, float]]],
    threshold: float,
    model: str,
    model_version: int,
    scored_at: datetime,
    feature_view: str | None = None,
) -> pa.Table:
    """The `transactions_scored` table of a batch scored by one model, built column by column: equal to
    `to_table` of each transaction's `scored_row`, without a dict per row (the stream handler's path)."""
    n = len(transactions)
    if not (len(features) == len(probabilities) == len(reasons) == n):
        raise ValueError("one feature row, probability and reason list per transaction is needed")
    threshold = float(threshold)
    probabilities = [float(p) for p in probabilities]
    columns: dict[str, pa.Array] = {
        f.name: pa.array([t[f.name] for t in transactions], type=f.type) for f in _TRANSACTION_FIELDS
    }
    texts = [features_json(f) for f in features]
    columns["features"] = pa.array(texts, type=pa.string())
    columns["feature_view"] = pa.array([feature_view or fraud_view_version()] * n, type=pa.string())
    columns["feature_hash"] = pa.array([feature_hash(t) for t in texts], type=pa.string())
    score_columns = {
        "fraud_probability": probabilities,
        "threshold": [threshold] * n,
        "is_alert": [p >= threshold for p in probabilities],
        "reasons": [[{"feature": f, "contribution": float(c)} for f, c in r] for r in reasons],
        "model": [model] * n,
        "model_version": [int(model_version)] * n,
        "scored_at": [scored_at.replace(microsecond=0)] * n,
    }
    for field in _SCORE_FIELDS:
        columns[field.name] = pa.array(score_columns[field.name], type=field.type)
    times = [t["ts"] for t in transactions]
    partitions = {"year": [ts.year for ts in times], "month": [ts.month for ts in times]}
    for field in _PARTITION_FIELDS:
        columns[field.name] = pa.array(partitions[field.name], type=field.type)
    return pa.Table.from_arrays([columns[name] for name in SCORED_SCHEMA.names], schema=SCORED_SCHEMA)


def alerts_table(scored: pa.Table) -> pa.Table:
    """The `fraud_alerts` table of a `transactions_scored` table (its rows at or over their threshold)."""
    alerts = scored.filter(scored["is_alert"]).select(ALERTS_SCHEMA.names)
    return alerts.cast(ALERTS_SCHEMA)


def alert_rows(scored: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The `fraud_alerts` rows among scored rows (those at or over their threshold)."""
    names = ALERTS_SCHEMA.names
    return [{n: r[n] for n in names} for r in scored if r["is_alert"]]


def to_table(rows: Sequence[Mapping[str, Any]], table: LakeTable) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=table.schema)
