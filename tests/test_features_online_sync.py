"""Rebuilding the online state from the lake: seeding each card with the engine's aggregates of its events
before its longest window, then replaying the window, stores every card's state byte for byte as replaying
all of its events does."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from cdp.backends import Backends
from cdp.catalog.dialect import parses_as_trino, to_athena
from cdp.online.local import LocalOnlineStore
from cdp.streaming.records import RECORD_FIELDS
from features.columns import epoch_seconds
from features.fraud import FRAUD_VIEW
from features.online import OnlineFeatures
from features.online_history import history_sql, window_events_sql
from features.online_sync import bucket_filters, sync_online_state
from features.sample import sample_cards, sample_transactions, write_sample_lake

LONGEST = 30 * 86_400  # the fraud view's longest window
_CHARS = "abcdefghijklmnopqrstuvwxyz234567"


def spread_tokens(table: pa.Table) -> pa.Table:
    """The sample's card tokens (all `crd_s…`) with their first character spread over the 32 buckets."""
    tokens = table.column("card_token").to_pylist()
    spread = [f"crd_{_CHARS[int(t[5:]) % 32]}{t[5:]}" for t in tokens]
    i = table.column_names.index("card_token")
    return table.set_column(i, "card_token", pa.array(spread, pa.string()))


# (events, cards, days): many short histories; few long ones (many values seen, many events evicted)
SAMPLES = {"short": (6_000, 400, 150), "long": (6_000, 40, 600)}


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def sample(request):
    events, cards, days = SAMPLES[request.param]
    tx = spread_tokens(sample_transactions(events, cards, seed=5, days=days))
    return tx, spread_tokens(sample_cards(cards, seed=5))


@pytest.fixture
def lake(sample):
    backends = Backends()
    write_sample_lake(backends, *sample)
    return backends


def stored_states(backends: Backends, mode: str, until: datetime, **kwargs) -> dict[str, bytes]:
    """Every stored state after syncing into a fresh store."""
    backends.online_store = LocalOnlineStore()
    sync_online_state(backends, until, mode=mode, **kwargs)
    return backends.online_store.get_many(backends.online_store.keys())


def cuts(tx: pa.Table) -> list[datetime]:
    """Sync times: early (many cards' history all inside the window), middle, after every event."""
    ts = sorted(tx.column("ts").to_pylist())
    return [ts[len(ts) // 40], ts[len(ts) // 2], ts[-1] + timedelta(seconds=1)]


def coverage(tx: pa.Table, until: datetime) -> dict[str, int]:
    """What the rows before `until` hold: cards by history shape, kinds of rows evicted from the window."""
    by_card = defaultdict(list)
    for r in tx.to_pylist():
        if r["ts"] < until:
            by_card[r["card_token"]].append(r)
    out = defaultdict(int)
    for rows in by_card.values():
        last = max(epoch_seconds(r["ts"]) for r in rows)
        old = [r for r in rows if epoch_seconds(r["ts"]) < last - LONGEST]
        out["cards"] += 1
        out["inside"] += len(rows) - len(old)
        out["only_inside"] += not old
        out["with_old"] += bool(old)
        out["idle_at_until"] += last < epoch_seconds(until) - LONGEST
        out["single_event"] += len(rows) == 1
        out["on_the_edge"] += any(epoch_seconds(r["ts"]) == last - LONGEST for r in rows)
        out["old_refunds"] += sum(r["amount_cents"] < 0 for r in old)
        out["old_errors"] += sum(bool(r["errors"]) for r in old)
        out["old_online"] += sum(r["channel"] == "online" for r in old)
        out["old_foreign"] += sum(
            r["merchant_state"] is not None and len(r["merchant_state"]) > 2 for r in old
        )
    return dict(out)


def test_seeded_sync_stores_the_same_state_as_replaying_every_event(lake, sample):
    tx, _ = sample
    seen = defaultdict(int)
    for until in cuts(tx):
        replayed = stored_states(lake, "replay", until, buckets=1)
        seeded = stored_states(lake, "seeded", until, buckets=3)
        assert len(replayed) == coverage(tx, until)["cards"] > 0
        assert seeded.keys() == replayed.keys()
        assert [k for k in replayed if seeded[k] != replayed[k]] == []
        for name, n in coverage(tx, until).items():
            seen[name] += n
    # the cuts exercised every shape of history and every kind of evicted row
    for name in ("only_inside", "with_old", "idle_at_until", "on_the_edge", "old_refunds", "old_errors"):
        assert seen[name] > 0, name
    assert seen["old_online"] > 0 and seen["old_foreign"] > 0


def test_seeded_sync_replays_only_the_window_and_counts_every_event(lake, sample):
    tx, _ = sample
    until = cuts(tx)[1]
    summary = sync_online_state(lake, until)
    before = sum(1 for t in tx.column("ts").to_pylist() if t < until)
    assert summary["mode"] == "seeded" and summary["events"] == before
    shape = coverage(tx, until)
    assert 0 < summary["replayed"] == shape["inside"] < before
    assert summary["cards"] == shape["cards"]


def test_the_state_is_the_same_whatever_the_number_of_card_buckets(lake, sample, monkeypatch):
    tx, _ = sample
    until = cuts(tx)[2]
    one = stored_states(lake, "seeded", until, buckets=1)
    every = stored_states(lake, "seeded", until, buckets=32)
    assert one == every and len(one) > 32

    # by default the bucket count follows the rows: at most `online_sync_rows_per_bucket` each
    monkeypatch.setattr(lake.settings, "online_sync_rows_per_bucket", len(tx) // 5)
    totals = []
    lake.online_store = LocalOnlineStore()
    sync_online_state(lake, until, progress=lambda done, total: totals.append((done, total)))
    assert totals == [(i, 5) for i in range(1, 6)]  # a fifth of the rows per bucket: 5 buckets
    assert lake.online_store.get_many(lake.online_store.keys()) == one


def test_bucket_filters_put_every_token_character_in_exactly_one_bucket():
    for groups in (1, 3, 8, 32, 40):
        filters = bucket_filters(groups)
        assert len(filters) == min(groups, 32)
        chars = [c for f in filters for c in f.split("IN (")[1].strip(")").replace("'", "").split(", ")]
        assert sorted(chars) == sorted(_CHARS)


def test_the_sync_sql_is_valid_for_athena():
    plan = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore()).plan
    bucket = bucket_filters(4)[0]
    for sql in (
        history_sql("2019-06-01 00:00:00", bucket, plan, LONGEST),
        window_events_sql("2019-06-01 00:00:00", bucket, list(RECORD_FIELDS), LONGEST),
    ):
        athena = to_athena(sql)
        assert parses_as_trino(athena)
        assert "TO_UNIXTIME" in athena or "ORDER BY" in athena  # transpiled, not passed through


def test_the_command_rebuilds_the_state_and_says_how_much_was_replayed(lake, sample, capsys):
    from features.cli import features_sync_online

    tx, _ = sample
    until = cuts(tx)[1]
    features_sync_online(until.isoformat())
    out = " ".join(capsys.readouterr().out.split())
    shape = coverage(tx, until)
    assert f"{shape['cards']:,} cards" in out and f"({shape['inside']:,} replayed" in out
    assert len(Backends().online_store.keys()) == shape["cards"]
