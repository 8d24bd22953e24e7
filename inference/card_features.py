"""The fraud view's online features for scored transactions, from the card's state in the online store.

Each request reads the cards' current state from the store (so it sees what the stream handler wrote),
applies its transactions in order, and then either
- writes the new state back (`record=True`: the transactions are real events), or
- throws the work away (`record=False`, the default: a what-if score that changes nothing).
Recorded events of a card must not be older than the card's last recorded event (`EventOrderError`).
A recorded event whose `txn_id` the card already recorded (a replay; `inference.seen_transactions`) does
not change the state again: it is scored against the card's state before the batch, like a what-if.

A consumer that scores events before it may record them (the stream handler: score, land, claim, then
advance the cards) computes them once with `features_pending(rows)`: the updated states are held in memory,
and a later `features(rows, record=True)` of the same rows writes them as they are (`commit`) when the
cards' stored state has not changed in between, instead of computing every event a second time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cdp.online.port import OnlineStore
from features.columns import epoch_seconds
from features.fraud import FRAUD_VIEW
from features.online import CardProfile, OnlineFeatures
from inference.seen_transactions import SeenTransactions


class EventOrderError(ValueError):
    """A recorded event is older than the card's last recorded event (names no values)."""


class _ReadRecorder:
    """An online store that remembers the blob it returned for every key read since `clear()` (None: the
    key had no state), so a pending batch can tell whether the stored states changed after it read them."""

    def __init__(self, store: OnlineStore) -> None:
        self.store = store
        self.read: dict[str, bytes | None] = {}

    def clear(self) -> None:
        self.read = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(keys)
        blobs = self.store.get_many(keys)
        self.read.update((k, blobs.get(k)) for k in keys)
        return blobs

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self.store.put_many(items)

    def delete_many(self, keys: Iterable[str]) -> None:
        self.store.delete_many(keys)

    def keys(self, prefix: str = "") -> list[str]:
        return self.store.keys(prefix)

    def snapshot(self) -> int:
        return self.store.snapshot()

    def unchanged(self) -> bool:
        """Whether every key read still holds the blob it held when read."""
        current = self.store.get_many(list(self.read))
        return all(current.get(k) == blob for k, blob in self.read.items())


class CardFeatures:
    """Computes fraud-view features for transaction rows; thread-safe (one request at a time inside)."""

    def __init__(
        self,
        store: OnlineStore,
        card_profiles: Callable[[], Mapping[str, CardProfile]] | None = None,
    ) -> None:
        self.store = store
        self._profiles_loader = card_profiles
        self._online = OnlineFeatures(FRAUD_VIEW, store)  # states live one request (`forget`)
        self._reads = _ReadRecorder(store)
        self._pending_online = OnlineFeatures(FRAUD_VIEW, self._reads)  # a pending batch's updated states
        self._pending_rows: list[Mapping[str, Any]] | None = None
        self._pending_keys: list[str] = []
        self._pending_features: list[dict[str, Any]] = []
        self._pending_seen: dict[str, bytes] = {}  # the pending batch's recorded-id blobs
        self._probe = OnlineFeatures(FRAUD_VIEW, store, parked_limit=0)  # replays, from the stored state
        self._seen = SeenTransactions(FRAUD_VIEW.name)
        self._lock = threading.Lock()
        self._profiles_loaded = card_profiles is None

    @property
    def profiles_loaded(self) -> bool:
        """Whether the cards' attributes are loaded (the first use loads them from the lake)."""
        return self._profiles_loaded

    def _ensure_profiles(self) -> None:
        if not self._profiles_loaded and self._profiles_loader is not None:
            profiles = dict(self._profiles_loader())
            self._online.cards = profiles
            self._pending_online.cards = profiles
            self._probe.cards = profiles
            self._profiles_loaded = True

    def features(self, rows: Sequence[Mapping[str, Any]], record: bool = False) -> list[dict[str, Any]]:
        """One feature dict per row (in order); the cards' stored state changes only when `record`.

        Recording the rows of the pending batch (equal rows, in the same order) writes its states when the
        cards' stored state is unchanged since `features_pending` read it; otherwise the pending batch is
        dropped and the rows are computed afresh from the stored state."""
        if record:
            committed = self._commit(rows)
            if committed is not None:
                return committed
        keys = sorted({r["card_token"] for r in rows})
        with self._lock:
            self._ensure_profiles()
            self._online.forget(keys)  # read the latest stored state, not a cached copy
            try:
                self._online.prepare(keys)  # one store read for the batch's cards
                if not record:
                    return [self._online.update(r) for r in rows]
                out, seen_blobs = self._record(self._online, self.store, rows)
                self._online.flush()
                if seen_blobs:
                    self.store.put_many(seen_blobs)
                self.store.snapshot()
                return out
            finally:
                self._online.forget(keys)

    def _record(
        self, online: OnlineFeatures, store: OnlineStore, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
        """The rows' features with the new ones applied to `online`'s (prepared) states, and the cards'
        recorded-id blobs to write; replayed rows are scored from the stored state and change nothing."""
        seen = self._seen.read(store, {r["card_token"] for r in rows})
        fresh = self._seen.new_rows(rows, seen)
        new_rows = [r for r, f in zip(rows, fresh, strict=True) if f]
        self._check_order(online, new_rows)
        out = [online.update(r) if f else self._replayed(r) for r, f in zip(rows, fresh, strict=True)]
        changed = self._seen.add(seen, new_rows)
        return out, self._seen.blobs(seen, changed)

    def _replayed(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A replayed event's features: a what-if against the card's stored state (nothing kept)."""
        key = row["card_token"]
        self._probe.forget([key])
        try:
            return self._probe.update(row)
        finally:
            self._probe.forget([key])

    def features_pending(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The rows' features as `features(rows, record=True)` computes them, without writing anything:
        the updated states wait in memory for `commit` (or `discard_pending`). Replaces any pending batch.
        Raises `EventOrderError` (nothing pending) when an event is older than its card's last one."""
        keys = sorted({r["card_token"] for r in rows})
        with self._lock:
            self._ensure_profiles()
            self._discard_pending()
            try:
                self._pending_online.prepare(keys)  # one store read for the batch's cards
                out, seen_blobs = self._record(self._pending_online, self._reads, rows)
            except BaseException:
                self._pending_online.forget(keys)
                self._reads.clear()
                raise
            self._pending_rows, self._pending_keys, self._pending_features = list(rows), keys, out
            self._pending_seen = seen_blobs
            return list(out)

    def commit(self, rows: Sequence[Mapping[str, Any]] | None = None) -> bool:
        """Write the pending batch's states and snapshot the store; True when written. False (the pending
        batch is dropped, nothing written) when there is none, when `rows` are not its rows, or when a
        card's stored state changed since it was read: the caller then records the rows afresh."""
        return self._commit(rows) is not None

    def _commit(self, rows: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
        """`commit`, returning the committed rows' features (None: nothing written)."""
        with self._lock:
            pending, out = self._pending_rows, self._pending_features
            try:
                if pending is None or (rows is not None and list(rows) != pending):
                    return None
                if not self._reads.unchanged():
                    return None
                self._pending_online.flush()
                if self._pending_seen:
                    self.store.put_many(self._pending_seen)
                self.store.snapshot()
                return out
            finally:
                self._discard_pending()

    def discard_pending(self) -> None:
        """Drop the pending batch's states without writing them (no-op without one)."""
        with self._lock:
            self._discard_pending()

    def _discard_pending(self) -> None:
        self._pending_online.forget(self._pending_keys)
        self._reads.clear()
        self._pending_rows, self._pending_keys, self._pending_features = None, [], []
        self._pending_seen = {}

    def last_event_epochs(self, card_tokens: Iterable[str]) -> dict[str, int | None]:
        """Epoch seconds of each card's last recorded event in the store (None: nothing recorded)."""
        keys = sorted(set(card_tokens))
        with self._lock:
            self._online.forget(keys)
            try:
                return {k: self._online.last_event_epoch(k) for k in keys}
            finally:
                self._online.forget(keys)

    @staticmethod
    def _check_order(online: OnlineFeatures, rows: Sequence[Mapping[str, Any]]) -> None:
        last: dict[str, int | None] = {}
        for r in rows:
            key = r["card_token"]
            if key not in last:
                last[key] = online.last_event_epoch(key)
            t = epoch_seconds(r["ts"])
            previous = last[key]
            if previous is not None and t < previous:
                raise EventOrderError("a recorded event is older than the card's last recorded event")
            last[key] = t
