"""Point-in-time: a row's features use only events strictly before it in (ts, event_seq, txn_id) order,
window edges are [t - W, t], and appending later events changes no earlier row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from cdp.backends import Backends
from cdp.online.local import LocalOnlineStore
from features.fraud import FRAUD_VIEW
from features.offline import compute_view, range_sql
from features.online import OnlineFeatures
from features.sample import sample_cards, sample_transactions, write_sample_lake

T0 = datetime(2019, 3, 1, 12, 0)


def _rows(events):
    """Lake rows for one card from (seconds after T0, event_seq, amount_cents)."""
    rows = []
    for offset, line, amount in events:
        ts = T0 + timedelta(seconds=offset)
        rows.append(
            {
                "txn_id": f"edge-{line}", "user_token": "usr_edge", "card_token": "crd_edge", "ts": ts,
                "amount_cents": amount, "channel": "chip", "merchant_id": line % 3, "merchant_city": "Austin",
                "merchant_state": "TX", "zip": "73301", "mcc": 5411, "errors": [], "is_fraud": False,
                "event_seq": line, "year": ts.year, "month": ts.month,
            }
        )  # fmt: skip
    return rows


def _both_paths(rows):
    backends = Backends()
    from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA

    write_sample_lake(backends, pa.Table.from_pylist(rows, schema=TRANSACTIONS_LAKE_SCHEMA), None)
    offline = {r["txn_id"]: r for r in compute_view(backends.catalog, FRAUD_VIEW.name).to_pylist()}
    online_path = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore())
    ordered = sorted(rows, key=lambda r: (r["ts"], r["event_seq"], r["txn_id"]))
    online = {r["txn_id"]: online_path.update(r) for r in ordered}
    return offline, online


def test_window_edges_and_ties_are_exact_on_both_paths():
    rows = _rows(
        [
            (0, 10, 100),  # a
            (3_600, 11, 200),  # b: a is exactly 1 h earlier -> in b's 1 h window
            (3_600, 5, 700),  # c: same second as b but earlier line -> before b; listed after it on purpose
            (3_600 + 3_660, 12, 50),  # d: b and c are 1 h 1 min earlier -> out of the 1 h window
            (86_400 + 3_600, 13, 10),  # e: b/c exactly 24 h earlier -> in the 24 h window, a is out
        ]
    )
    offline, online = _both_paths(rows)
    for path in (offline, online):
        a, b, c, d, e = (path[f"edge-{i}"] for i in (10, 11, 5, 12, 13))
        assert (a["txn_count_1h"], a["amount_max_1h"], a["seconds_since_previous"]) == (0, None, None)
        assert (c["txn_count_1h"], c["amount_sum_1h"]) == (1, 100)  # only a, not its same-second peer b
        assert (b["txn_count_1h"], b["amount_sum_1h"], b["amount_max_1h"]) == (2, 800, 700)
        assert b["seconds_since_previous"] == 0
        assert (d["txn_count_1h"], d["txn_count_24h"], d["amount_max_24h"]) == (0, 3, 700)
        assert (e["txn_count_24h"], e["amount_sum_24h"]) == (3, 950)  # b, c, d; a is 24 h + 1 h earlier
        assert e["txn_count_30d"] == 4
        # merchants are line % 3: a=1, c=2, b=2 (seen at c), d=0, e=1 (seen at a)
        assert [p["is_new_merchant"] for p in (a, c, b, d, e)] == [True, True, False, True, False]
        # first-time merchants among the prior events of the window: a, c and d were new, b and e were not
        assert [p["new_merchant_count_1h"] for p in (a, c, b, d, e)] == [0, 1, 2, 0, 0]
        assert [p["new_merchant_count_24h"] for p in (a, c, b, d, e)] == [0, 1, 2, 2, 2]
        assert not any(p["is_high_risk_mcc"] for p in (a, b, c, d, e))  # 5411 grocery


def _later_events(tx: pa.Table) -> pa.Table:
    """Events after everything in `tx`: at each card's last second (later source lines) and beyond."""
    last = {}
    for r in tx.to_pylist():
        last[r["card_token"]] = max(last.get(r["card_token"], r["ts"]), r["ts"])
    line = max(tx["event_seq"].to_pylist()) + 1
    extra = sample_transactions(1_500, 300, seed=99)
    rows = []
    for i, r in enumerate(extra.to_pylist()):
        base = last.get(r["card_token"], max(last.values()))
        r["ts"] = base if i % 10 == 0 else base + (r["ts"] - datetime(2018, 1, 1)) + timedelta(minutes=1)
        r["event_seq"], r["txn_id"] = line + i, f"late-{i}"
        r["year"], r["month"] = r["ts"].year, r["ts"].month
        rows.append(r)
    return pa.Table.from_pylist(rows, schema=tx.schema)


def _changed_rows(before: list[dict], after: list[dict]) -> list[str]:
    now = {r["txn_id"]: r for r in after}
    return [r["txn_id"] for r in before if now[r["txn_id"]] != r]


def test_appending_later_events_changes_no_earlier_row():
    backends = Backends()
    tx = sample_transactions(4_000, 300, seed=5)
    write_sample_lake(backends, tx, sample_cards(300, seed=5))
    before = compute_view(backends.catalog, FRAUD_VIEW.name).to_pylist()
    write_sample_lake(backends, _later_events(tx), None, chunk="1")
    after = compute_view(backends.catalog, FRAUD_VIEW.name).to_pylist()
    assert len(after) == len(before) + 1_500
    assert _changed_rows(before, after) == []


def test_the_same_check_catches_a_window_that_peeks_forward():
    backends = Backends()
    tx = sample_transactions(4_000, 300, seed=5)
    write_sample_lake(backends, tx, sample_cards(300, seed=5))
    peeking = range_sql(FRAUD_VIEW.name).replace(
        "ROWS BETWEEN _hist_n - _24h_start PRECEDING AND 1 PRECEDING",
        "ROWS BETWEEN _hist_n - _24h_start PRECEDING AND 1 FOLLOWING",
    )
    assert peeking != range_sql(FRAUD_VIEW.name)
    before = backends.catalog.query(peeking).to_pylist()
    write_sample_lake(backends, _later_events(tx), None, chunk="1")
    after = backends.catalog.query(peeking).to_pylist()
    assert len(_changed_rows(before, after)) > 0
