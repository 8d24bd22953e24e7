"""The challenger in shadow: the same events, the same features, scored by the candidate waiting to switch.

A version that passed the promotion gate holds the registry's `challenger` alias. The stream handler
scores every batch with the champion (what is acted on: alerts, decisions) and then, when a challenger is
held, with the challenger too. The challenger's scores go to `transactions_shadow` only, beside the
champion's score of the same event: never to `fraud_alerts`, never to a decision. A shadow failure is
logged and counted, and never stops or changes the batch. The shadow comparison
(`monitoring.promotion.shadow`) reads this table.

`transactions_shadow` holds tokens, times and scores only (no amounts, merchants or user tokens), plus the
event's feature hash (the same features scored both models), partitioned like `transactions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from cdp.lake.tables import PARTITION_KEYS, TRANSACTIONS_LAKE_SCHEMA, LakeTable
from cdp.scoring.port import ScoredBatch
from inference.holder import ModelHolder
from inference.streaming.champion_scorer import FraudChampionScorer

SHADOW_SCHEMA = pa.schema(
    [
        *(TRANSACTIONS_LAKE_SCHEMA.field(n) for n in ("txn_id", "card_token", "ts")),
        pa.field("feature_hash", pa.string()),
        pa.field("champion_model", pa.string()),
        pa.field("champion_version", pa.int32()),
        pa.field("champion_probability", pa.float64()),
        pa.field("champion_alert", pa.bool_()),
        pa.field("model", pa.string()),
        pa.field("model_version", pa.int32()),
        pa.field("fraud_probability", pa.float64()),
        pa.field("threshold", pa.float64()),
        pa.field("would_alert", pa.bool_()),
        pa.field("scored_at", pa.timestamp("s")),
        *(TRANSACTIONS_LAKE_SCHEMA.field(n) for n in PARTITION_KEYS),
    ]
)
TRANSACTIONS_SHADOW = LakeTable("transactions_shadow", SHADOW_SCHEMA, PARTITION_KEYS)


class ChallengerScorer:
    """The fraud model's challenger scoring in this process (reloaded as the registry's alias moves)."""

    def __init__(self, holder: ModelHolder, threshold: float | None = None, reason_codes: int = 3) -> None:
        self.holder = holder
        self._scorer = FraudChampionScorer(holder, threshold, reason_codes)

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch | None:
        """The challenger's scores of the rows, or None when the model has no challenger."""
        if self.holder.loaded is None:
            return None
        return self._scorer.score(feature_rows).checked(len(feature_rows), "challenger")

    def close(self) -> None:
        self.holder.stop()


def shadow_table(scored: pa.Table, challenger: ScoredBatch, scored_at: datetime) -> pa.Table:
    """The `transactions_shadow` rows of a `transactions_scored` batch and its challenger scores (same
    rows, same order)."""
    n = scored.num_rows
    if len(challenger.scores) != n:
        raise ValueError("one challenger score per scored row is needed")
    probabilities = [float(s.probability) for s in challenger.scores]
    threshold = float(challenger.threshold)
    columns: dict[str, Any] = {
        "txn_id": scored["txn_id"],
        "card_token": scored["card_token"],
        "ts": scored["ts"],
        "feature_hash": scored["feature_hash"],
        "champion_model": scored["model"],
        "champion_version": scored["model_version"],
        "champion_probability": scored["fraud_probability"],
        "champion_alert": scored["is_alert"],
        "model": pa.array([challenger.model] * n, pa.string()),
        "model_version": pa.array([int(challenger.model_version)] * n, pa.int32()),
        "fraud_probability": pa.array(probabilities, pa.float64()),
        "threshold": pa.array([threshold] * n, pa.float64()),
        "would_alert": pa.array([p >= threshold for p in probabilities], pa.bool_()),
        "scored_at": pa.array([scored_at.replace(microsecond=0)] * n, pa.timestamp("s")),
        "year": scored["year"],
        "month": scored["month"],
    }
    return pa.table(columns).select(SHADOW_SCHEMA.names).cast(SHADOW_SCHEMA)


def challenger_scorer(backends: Any) -> ChallengerScorer:
    """The fraud model's challenger in this process, reloaded from the registry as the settings say."""
    from cdp.registry.port import CHALLENGER
    from inference.config import ServingConfig
    from inference.loaded import load_version

    config = ServingConfig.from_settings(backends.settings)

    def load(version):  # noqa: ANN001, ANN202 - a ModelVersion -> LoadedModel
        return load_version(version, backends.object_store)

    holder = ModelHolder(
        config.fraud_model, backends.model_registry, load, config.reload_seconds, alias=CHALLENGER
    )
    holder.start()
    return ChallengerScorer(holder, config.fraud_threshold, config.reason_codes)
