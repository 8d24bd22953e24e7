"""Drift injected into the stream replay, to exercise the monitoring loop (the demo and the tests).

From a given point of the replay on, the producer changes the transactions as the world might: the rows
then go through core banking, protection and the stream exactly like unchanged ones, so nothing
downstream knows. Every decision is a pure function of (seed, the row's source line or card), so a
restarted producer injects exactly the same changes.

Kinds:
- `amount-shift`: every amount is multiplied by `factor` (a price shock, a new merchant mix): feature and
  score drift, fraud itself unchanged.
- `fraud-pattern`: a new fraud pattern the champion never saw: on a share of the cards, some transactions
  become small online purchases at a handful of new merchants, labelled fraud (card testing).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

DriftKind = Literal["amount-shift", "fraud-pattern"]
DRIFT_KINDS: tuple[str, ...] = ("amount-shift", "fraud-pattern")
_NEW_MERCHANTS = 8
_TESTING_MCC = 5732  # electronics stores: where stolen cards are tested
_FRAUD_PATTERN_COLUMNS = (
    "amount_cents", "channel", "merchant_id", "merchant_city",
    "merchant_state", "zip", "mcc", "errors", "is_fraud",
)  # fmt: skip


@dataclass(frozen=True)
class DriftScenario:
    """What to inject and from where: the rows from `start_fraction` of the replay on (time order) change."""

    kind: DriftKind
    start_fraction: float = 0.5
    seed: int = 7
    factor: float = 3.0  # amount-shift: multiplier of every amount
    card_share: float = 0.15  # fraud-pattern: share of cards attacked
    row_share: float = 0.35  # fraud-pattern: share of an attacked card's rows that become fraud

    def __post_init__(self) -> None:
        if self.kind not in DRIFT_KINDS:
            raise ValueError(f"drift kind must be one of {', '.join(DRIFT_KINDS)}, got {self.kind!r}")
        if not 0 <= self.start_fraction <= 1:
            raise ValueError("drift start_fraction must be within 0..1")
        if self.factor <= 0:
            raise ValueError("drift factor must be positive")
        if not (0 < self.card_share <= 1 and 0 < self.row_share <= 1):
            raise ValueError("drift card_share and row_share must be in (0, 1]")

    def start_row(self, total: int) -> int:
        """The first changed position of a replay of `total` rows."""
        return int(total * self.start_fraction)

    def apply(self, batch: pa.Table, offset: int, total: int) -> tuple[pa.Table, int]:
        """`batch` (replay positions offset..offset+n-1 of `total`) with the drift; and rows changed."""
        first = max(0, self.start_row(total) - offset)
        if first >= batch.num_rows:
            return batch, 0
        mask = np.zeros(batch.num_rows, dtype=bool)
        mask[first:] = True
        if self.kind == "amount-shift":
            return self._shift_amounts(batch, mask), int(mask.sum())
        return self._fraud_pattern(batch, mask)

    def _uniform(self, salt: str, keys: np.ndarray) -> np.ndarray:
        """A deterministic draw in [0, 1) per key (a keyed hash: the same on every run)."""
        prefix = f"{self.seed}:{salt}:".encode()
        out = np.empty(len(keys), dtype=np.float64)
        for i, key in enumerate(keys):
            digest = hashlib.blake2b(prefix + str(key).encode(), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "big") / 2**64
        return out

    def _shift_amounts(self, batch: pa.Table, mask: np.ndarray) -> pa.Table:
        amounts = batch["amount_cents"].to_numpy(zero_copy_only=False).astype(np.int64)
        shifted = np.where(mask, np.rint(amounts * self.factor).astype(np.int64), amounts)
        return batch.set_column(
            batch.schema.get_field_index("amount_cents"), "amount_cents", pa.array(shifted, pa.int64())
        )

    def _fraud_pattern(self, batch: pa.Table, mask: np.ndarray) -> tuple[pa.Table, int]:
        users = batch["user"].to_numpy(zero_copy_only=False)
        cards = batch["card"].to_numpy(zero_copy_only=False)
        lines = batch["line"].to_numpy(zero_copy_only=False)
        card_keys = np.array([f"{u}-{c}" for u, c in zip(users, cards, strict=True)])
        attacked = self._uniform("card", card_keys) < self.card_share
        chosen = mask & attacked & (self._uniform("row", lines) < self.row_share)
        n = int(chosen.sum())
        if n == 0:
            return batch, 0
        draw = iter(self._uniform("amount", lines[chosen]))
        picks = iter((self._uniform("merchant", lines[chosen]) * _NEW_MERCHANTS).astype(np.int64))
        columns = {name: batch[name].to_pylist() for name in _FRAUD_PATTERN_COLUMNS}
        for i in np.flatnonzero(chosen):
            columns["amount_cents"][i] = 100 + int(next(draw) * 900)
            columns["channel"][i] = "online"
            columns["merchant_id"][i] = self._merchant_id(int(next(picks)))
            columns["merchant_city"][i] = "ONLINE"
            columns["merchant_state"][i] = None
            columns["zip"][i] = None
            columns["mcc"][i] = _TESTING_MCC
            columns["errors"][i] = []
            columns["is_fraud"][i] = True
        for name, values in columns.items():
            index = batch.schema.get_field_index(name)
            batch = batch.set_column(index, name, pa.array(values, batch.schema.field(index).type))
        return batch, n

    def _merchant_id(self, k: int) -> int:
        digest = hashlib.blake2b(f"{self.seed}:merchant:{k}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
