"""The fraud champion scoring in this process: what the embedded scoring endpoint delegates to.

The champion held by a `ModelHolder` (hot reloaded) scores with the same encoding, probability and SHAP
reason codes as the REST API (`inference.fraud_scoring`), one model version per batch; reason codes for
the alerts only (the events scored at or above the threshold): exact TreeSHAP costs many predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdp.scoring.port import ScoredBatch
from inference.fraud_scoring import decision_threshold, encode, encode_rows, score_frame
from inference.holder import ModelHolder


class FraudChampionScorer:
    """`ChampionScorer` over the champion currently held by `holder`."""

    def __init__(self, holder: ModelHolder, threshold: float | None = None, reason_codes: int = 3) -> None:
        self.holder = holder
        self.threshold = threshold
        self.reason_codes = reason_codes

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        model = self.holder.current  # raises ModelUnavailableError without a champion
        threshold = decision_threshold(model, self.threshold)
        if not feature_rows:
            return ScoredBatch(model.name, model.version, threshold, [])
        inputs = encode_rows(model, feature_rows) if model.one_hot else encode(model, feature_rows)
        scores = score_frame(model, inputs, self.reason_codes, explain_from=threshold)  # alerts explained
        return ScoredBatch(model.name, model.version, threshold, scores)

    def close(self) -> None:
        """Stop the holder's reload thread."""
        self.holder.stop()
