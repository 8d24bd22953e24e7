"""The stream's fraud alerts as the notifier reads them: `fraud_alerts` joined with the scored row for
the channel and the merchant's state (both lake tables of the stream handler). Tokens and transaction facts
only; the merchant's city is not read at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp.catalog.port import CatalogError
from engagement.context import Alert
from inference.streaming.scored import FRAUD_ALERTS, TRANSACTIONS_SCORED

if TYPE_CHECKING:
    from cdp.backends import Backends

_ALERTS_SQL = """
SELECT a.txn_id, a.user_token, a.card_token, a.ts, a.amount_cents, a.mcc, a.fraud_probability, a.reasons,
       s.channel, s.merchant_state
FROM fraud_alerts a
LEFT JOIN (SELECT DISTINCT txn_id, channel, merchant_state FROM transactions_scored) s ON s.txn_id = a.txn_id
ORDER BY a.ts, a.txn_id
"""


def lake_alerts(backends: Backends) -> list[Alert]:
    """Every alert in the lake, oldest first (none when the stream has not been scored yet)."""
    bucket = backends.settings.lake_bucket
    try:
        for table in (FRAUD_ALERTS, TRANSACTIONS_SCORED):
            backends.catalog.register_table(table.info(bucket))
        rows = backends.catalog.query(_ALERTS_SQL).to_pylist()
    except CatalogError:
        return []
    return [
        Alert(
            txn_id=r["txn_id"],
            user_token=r["user_token"],
            card_token=r["card_token"],
            ts=r["ts"],
            amount_cents=int(r["amount_cents"] or 0),
            mcc=r["mcc"],
            channel=r["channel"],
            merchant_state=r["merchant_state"],
            probability=float(r["fraud_probability"] or 0.0),
            reasons=tuple(x["feature"] for x in (r["reasons"] or [])),
        )
        for r in rows
    ]
