"""Bring the online store up to date with the lake: each card's state as of a point in time.

The real-time path updates card states one event at a time; before it starts (or after the store was
lost) the states must hold every earlier event, or the first events of each card would all look like a
new card. This replays the lake's history through the same online updater the stream uses — so the state
is exactly what the stream would have built — one card bucket at a time to bound memory, starting each
card from an empty state so that re-running it never counts an event twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cdp.backends import Backends
from cdp.streaming.records import RECORD_FIELDS
from features.fraud import FRAUD_VIEW
from features.online import OnlineFeatures, load_card_profiles

# Card tokens are `crd_` + base32: the first character after the prefix splits them into 32 buckets.
_BUCKETS = "abcdefghijklmnopqrstuvwxyz234567"


def sync_online_state(
    backends: Backends,
    until: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Replay every lake transaction with `ts < until` into the fraud view's online state."""
    t0 = time.perf_counter()
    online = OnlineFeatures(FRAUD_VIEW, backends.online_store, load_card_profiles(backends.catalog))
    columns = ", ".join(RECORD_FIELDS)
    bound = until.isoformat(sep=" ")
    events = cards = 0
    for i, bucket in enumerate(_BUCKETS):
        rows = backends.catalog.query(
            f"SELECT {columns} FROM transactions WHERE ts < TIMESTAMP '{bound}' "
            f"AND substr(card_token, 5, 1) = '{bucket}' ORDER BY card_token, ts, event_seq, txn_id"
        ).to_pylist()
        keys = {r["card_token"] for r in rows}
        online.reset(keys)
        for row in rows:
            online.update(row)
        online.flush()
        online.forget(keys)
        events, cards = events + len(rows), cards + len(keys)
        if progress is not None:
            progress(i + 1, len(_BUCKETS))
    backends.online_store.snapshot()
    return {"events": events, "cards": cards, "until": bound, "seconds": round(time.perf_counter() - t0, 1)}
