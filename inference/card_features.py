"""The fraud view's online features for scored transactions, from the card's state in the online store.

Each request reads the cards' current state from the store (so it sees what the stream handler wrote),
applies its transactions in order, and then either
- writes the new state back (`record=True`: the transactions are real events), or
- throws the work away (`record=False`, the default: a what-if score that changes nothing).
Recorded events of a card must not be older than the card's last recorded event (`EventOrderError`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cdp.online.port import OnlineStore
from features.columns import epoch_seconds
from features.fraud import FRAUD_VIEW
from features.online import CardProfile, OnlineFeatures


class EventOrderError(ValueError):
    """A recorded event is older than the card's last recorded event (names no values)."""


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
        self._lock = threading.Lock()
        self._profiles_loaded = card_profiles is None

    def _ensure_profiles(self) -> None:
        if not self._profiles_loaded and self._profiles_loader is not None:
            self._online.cards = dict(self._profiles_loader())
            self._profiles_loaded = True

    def features(self, rows: Sequence[Mapping[str, Any]], record: bool = False) -> list[dict[str, Any]]:
        """One feature dict per row (in order); the cards' stored state changes only when `record`."""
        keys = sorted({r["card_token"] for r in rows})
        with self._lock:
            self._ensure_profiles()
            self._online.forget(keys)  # read the latest stored state, not a cached copy
            try:
                if record:
                    self._check_order(rows)
                out = [self._online.update(r) for r in rows]
                if record:
                    self._online.flush()
                    self.store.snapshot()
                return out
            finally:
                self._online.forget(keys)

    def last_event_epochs(self, card_tokens: Iterable[str]) -> dict[str, int | None]:
        """Epoch seconds of each card's last recorded event in the store (None: nothing recorded)."""
        keys = sorted(set(card_tokens))
        with self._lock:
            self._online.forget(keys)
            try:
                summaries = {k: self._online.state_summary(k) for k in keys}
            finally:
                self._online.forget(keys)
        return {k: None if s is None else s.get("last_event_epoch_s") for k, s in summaries.items()}

    def _check_order(self, rows: Sequence[Mapping[str, Any]]) -> None:
        last: dict[str, int | None] = {}
        for r in rows:
            key = r["card_token"]
            if key not in last:
                summary = self._online.state_summary(key)
                last[key] = None if summary is None else summary.get("last_event_epoch_s")
            t = epoch_seconds(r["ts"])
            previous = last[key]
            if previous is not None and t < previous:
                raise EventOrderError("a recorded event is older than the card's last recorded event")
            last[key] = t
