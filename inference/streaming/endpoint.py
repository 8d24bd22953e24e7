"""The scoring-endpoint port of the stream handler: online feature rows in, fraud scores out, in batches.

Adapters:
- `InProcessEndpoint`: the champion held by a `ModelHolder` (hot reloaded), scored in this process with
  the same encoding, probability and SHAP reason codes as the REST API (`inference.fraud_scoring`);
- `SageMakerEndpoint`: a SageMaker real-time endpoint serving this project's inference container, called
  with `invoke_endpoint` (JSON rows of raw features; the container encodes them as training did). Its
  `/invocations` answer carries probabilities and the model version, not reason codes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from inference.fraud_scoring import (
    DEFAULT_THRESHOLD,
    Score,
    decision_threshold,
    encode,
    encode_rows,
    score_frame,
)
from inference.holder import ModelHolder

SAGEMAKER_ROWS_PER_CALL = 500  # ~1 KB of JSON per feature row: far under the 6 MB request limit


@dataclass(frozen=True)
class ScoredBatch:
    """Scores of a batch of feature rows (input order), all from one model version."""

    model: str
    model_version: int
    threshold: float
    scores: list[Score]


class EndpointError(RuntimeError):
    """The endpoint answered with something other than one probability per row (names no values)."""


@runtime_checkable
class ScoringEndpoint(Protocol):
    """Scores online feature rows (dicts of the fraud view's raw features) in one batch."""

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        """One score per row, in order, from a single model version."""
        ...


class InProcessEndpoint:
    """Scores with the champion currently held by `holder` (one version per batch)."""

    def __init__(self, holder: ModelHolder, threshold: float | None = None, reason_codes: int = 3) -> None:
        self.holder = holder
        self.threshold = threshold
        self.reason_codes = reason_codes

    def close(self) -> None:
        """Stop the holder's reload thread."""
        self.holder.stop()

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        model = self.holder.current  # raises ModelUnavailableError without a champion
        threshold = decision_threshold(model, self.threshold)
        if not feature_rows:
            return ScoredBatch(model.name, model.version, threshold, [])
        inputs = encode_rows(model, feature_rows) if model.one_hot else encode(model, feature_rows)
        scores = score_frame(model, inputs, self.reason_codes)
        return ScoredBatch(model.name, model.version, threshold, scores)


class SageMakerEndpoint:
    """Scores through a SageMaker endpoint (`sagemaker-runtime` client) serving the inference container."""

    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        threshold: float = DEFAULT_THRESHOLD,
        rows_per_call: int = SAGEMAKER_ROWS_PER_CALL,
    ) -> None:
        self.client = client
        self.endpoint_name = endpoint_name
        self.threshold = threshold
        self.rows_per_call = rows_per_call

    @staticmethod
    def request_body(feature_rows: Sequence[Mapping[str, Any]]) -> bytes:
        """The JSON body sent for these rows (`{"instances": [...]}`)."""
        doc = {"instances": [dict(r) for r in feature_rows]}
        return json.dumps(doc, separators=(",", ":"), default=str).encode()

    def _invoke(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, int, list[float]]:
        response = self.client.invoke_endpoint(
            EndpointName=self.endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=self.request_body(rows),
        )
        doc = json.loads(response["Body"].read())
        predictions = doc.get("predictions") if isinstance(doc, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(rows):
            raise EndpointError(f"endpoint {self.endpoint_name} did not return one prediction per row")
        return str(doc.get("model", self.endpoint_name)), int(doc.get("model_version", 0)), predictions

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        model, version, probabilities = self.endpoint_name, 0, []
        for start in range(0, len(feature_rows), self.rows_per_call):
            part_model, part_version, part = self._invoke(feature_rows[start : start + self.rows_per_call])
            if probabilities and (part_model, part_version) != (model, version):
                raise EndpointError(f"endpoint {self.endpoint_name} changed model version within a batch")
            model, version = part_model, part_version
            probabilities.extend(part)
        return ScoredBatch(model, version, self.threshold, [Score(float(p), []) for p in probabilities])
