"""Bring the online store up to date with the lake: each card's state as of a point in time.

The real-time path updates card states one event at a time; before it starts (or after the store was
lost) the states must hold every earlier event, or the first events of each card would all look like a
new card. The state is exactly what the stream would have built, one card bucket at a time to bound
memory, each card starting from scratch so that re-running it never counts an event twice.

Two ways to the same stored state (the tests hold them byte for byte equal):
- "seeded" (default): the engine aggregates each card's events older than its longest window (history
  count and sums, values first seen and counted, in first-seen order; `features.online_history`), the
  state starts from those, and only the events inside the window go through the online updater;
- "replay": every event goes through the online updater, oldest first (the reference; slow on long
  histories: all of them pass through Python one by one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from cdp.backends import Backends
from cdp.streaming.records import RECORD_FIELDS
from features.fraud import FRAUD_VIEW
from features.online import OnlineFeatures, load_card_profiles
from features.online_history import card_histories, history_sql, timestamp_literal, window_events_sql

# Card tokens are `crd_` + base32: the first character after the prefix splits them into 32 buckets.
_BUCKETS = "abcdefghijklmnopqrstuvwxyz234567"
Mode = Literal["seeded", "replay"]


def bucket_filters(groups: int) -> list[str]:
    """SQL conditions splitting cards into `groups` (1..32) sets by the first character of the token."""
    groups = max(1, min(len(_BUCKETS), groups))
    chars = [_BUCKETS[i::groups] for i in range(groups)]
    return ["substr(card_token, 5, 1) IN (" + ", ".join(f"'{c}'" for c in sorted(g)) + ")" for g in chars]


def sync_online_state(
    backends: Backends,
    until: datetime,
    progress: Callable[[int, int], None] | None = None,
    *,
    mode: Mode = "seeded",
    buckets: int | None = None,
) -> dict[str, Any]:
    """Rebuild the fraud view's online state of every card from the lake's transactions with `ts < until`.

    `buckets`: how many sets of cards are built one after the other (1..32). Default: "replay" 32 (all
    rows of a set pass through Python), "seeded" enough for setting `online_sync_rows_per_bucket` (only
    aggregates and window events reach Python: fewer, larger sets spare the engine's per-query work)."""
    t0 = time.perf_counter()
    bound = timestamp_literal(until)
    if mode == "replay":
        online = OnlineFeatures(FRAUD_VIEW, backends.online_store, load_card_profiles(backends.catalog))
        build, count = _replay_bucket, buckets or len(_BUCKETS)
    else:  # card attributes only feed the features an update returns, never the state
        online = OnlineFeatures(FRAUD_VIEW, backends.online_store)
        build, count = _seeded_bucket, buckets or _bucket_count(backends, bound)
    filters = bucket_filters(count)
    events = replayed = cards = 0
    for i, bucket in enumerate(filters):
        summary = build(backends, online, bound, bucket)
        events, replayed, cards = events + summary[0], replayed + summary[1], cards + summary[2]
        if progress is not None:
            progress(i + 1, len(filters))
    backends.online_store.snapshot()
    return {
        "events": events,
        "replayed": replayed,
        "cards": cards,
        "until": bound,
        "mode": mode,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _bucket_count(backends: Backends, bound: str) -> int:
    """Sets of cards to build the lake's rows before `bound` in, at most `online_sync_rows_per_bucket`
    rows each (as the tokens spread them evenly)."""
    table = backends.catalog.query(f"SELECT count(*) AS n FROM transactions WHERE ts < TIMESTAMP '{bound}'")
    rows = int(table.column("n")[0].as_py())
    return max(1, math.ceil(rows / backends.settings.online_sync_rows_per_bucket))


def _seeded_bucket(
    backends: Backends, online: OnlineFeatures, bound: str, bucket: str
) -> tuple[int, int, int]:
    """Seed the bucket's cards with their history before the window, replay the window's events."""
    longest = max((w.seconds for w in online.plan.windows), default=0)
    history = backends.catalog.query(history_sql(bound, bucket, online.plan, longest))
    rows = backends.catalog.query(window_events_sql(bound, bucket, list(RECORD_FIELDS), longest)).to_pylist()
    keys = {r["card_token"] for r in rows}  # every card: its last event is inside its own window
    online.reset(keys)
    first: dict[str, dict[str, Any]] = {}
    for row in rows:  # a card's first event in its window stands in for the one before (see `seed`)
        first.setdefault(row["card_token"], row)
    older = 0
    for key, h in card_histories(history, online.plan):
        online.seed(key, h.hist, h.seen, h.share, first[key])
        older += h.hist[0]
    for row in rows:
        online.update(row)
    online.flush()
    online.forget(keys)
    return older + len(rows), len(rows), len(keys)


def _replay_bucket(
    backends: Backends, online: OnlineFeatures, bound: str, bucket: str
) -> tuple[int, int, int]:
    """Replay every event of the bucket's cards through the online updater."""
    columns = ", ".join(RECORD_FIELDS)
    rows = backends.catalog.query(
        f"SELECT {columns} FROM transactions WHERE ts < TIMESTAMP '{bound}' AND {bucket} "
        "ORDER BY card_token, ts, event_seq, txn_id"
    ).to_pylist()
    keys = {r["card_token"] for r in rows}
    online.reset(keys)
    for row in rows:
        online.update(row)
    online.flush()
    online.forget(keys)
    return len(rows), len(rows), len(keys)
