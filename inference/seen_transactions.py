"""The transaction ids recently recorded into each card's online state, so a replayed `txn_id` is never
counted twice.

They live in the online store beside the card's feature state, under `<view>_txn_ids#<card_token>` (the
card token last, as every online key, so erasure finds them): a JSON list of `[epoch_seconds, txn_id]`
of the card's recorded events within `retention_seconds` of its newest one, at most `limit` of them.
An event older than that is older than the card's last event, which the order check refuses anyway.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cdp.online.port import OnlineStore
from features.columns import epoch_seconds

RETENTION_SECONDS = 7 * 86_400
LIMIT = 1000


class SeenTransactions:
    """Reads, extends and writes the per-card sets of recorded `txn_id`s (card -> {txn_id: epoch})."""

    def __init__(
        self, view_name: str, retention_seconds: int = RETENTION_SECONDS, limit: int = LIMIT
    ) -> None:
        self.prefix = f"{view_name}_txn_ids#"
        self.retention_seconds = retention_seconds
        self.limit = limit

    def key(self, card_token: str) -> str:
        return f"{self.prefix}{card_token}"

    def read(self, store: OnlineStore, cards: Iterable[str]) -> dict[str, dict[str, int]]:
        """Each card's recorded ids (empty for a card without any), in one store call."""
        cards = sorted(set(cards))
        blobs = store.get_many([self.key(c) for c in cards])
        out: dict[str, dict[str, int]] = {}
        for card in cards:
            blob = blobs.get(self.key(card))
            out[card] = {} if blob is None else {t: int(e) for e, t in json.loads(blob)}
        return out

    @staticmethod
    def new_rows(rows: Sequence[Mapping[str, Any]], seen: Mapping[str, Mapping[str, int]]) -> list[bool]:
        """For each row: True when its `txn_id` is neither recorded for its card nor earlier in `rows`."""
        batch: set[tuple[str, str]] = set()
        out = []
        for row in rows:
            card, txn_id = row["card_token"], row["txn_id"]
            fresh = txn_id not in seen.get(card, {}) and (card, txn_id) not in batch
            batch.add((card, txn_id))
            out.append(fresh)
        return out

    @staticmethod
    def add(seen: dict[str, dict[str, int]], rows: Iterable[Mapping[str, Any]]) -> set[str]:
        """Add the rows' ids to `seen`; the cards changed."""
        changed = set()
        for row in rows:
            seen.setdefault(row["card_token"], {})[row["txn_id"]] = epoch_seconds(row["ts"])
            changed.add(row["card_token"])
        return changed

    def blobs(self, seen: Mapping[str, Mapping[str, int]], cards: Iterable[str]) -> dict[str, bytes]:
        """The stored form of the cards' ids: those within the retention of the newest, newest kept."""
        out = {}
        for card in sorted(set(cards)):
            ids = seen.get(card, {})
            if not ids:
                continue
            newest = max(ids.values())
            kept = sorted((e, t) for t, e in ids.items() if e >= newest - self.retention_seconds)
            out[self.key(card)] = json.dumps(kept[-self.limit :], separators=(",", ":")).encode()
        return out
