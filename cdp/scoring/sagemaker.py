"""The AWS scoring endpoint: a SageMaker real-time endpoint serving this project's inference container.

Called with `invoke_endpoint` (JSON rows of raw features, `{"instances": [...]}`; the container encodes
them as training did). Its `/invocations` answer is `{"predictions": [...], "model": ..., "model_version":
...}` plus, for a classifier, `"reasons"`: each row's top reason codes (`[{"feature", "contribution"}]`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cdp.scoring.port import DEFAULT_THRESHOLD, EndpointError, Score, ScoredBatch

if TYPE_CHECKING:
    from cdp.settings import Settings

SAGEMAKER_ROWS_PER_CALL = 500  # ~1 KB of JSON per feature row: far under the 6 MB request limit


class SageMakerEndpoint:
    """`ScoringEndpoint` through a `sagemaker-runtime` client."""

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

    @classmethod
    def from_settings(cls, settings: Settings, client: Any | None = None) -> SageMakerEndpoint:
        """The endpoint `settings.fraud_endpoint_name` in `settings.aws_region`, deciding at
        `settings.serve_fraud_threshold` (else 0.5: the champion's metrics are not in its answer)."""
        if client is None:
            from cdp.aws_clients import aws_client

            client = aws_client(settings, "sagemaker-runtime")
        from cdp.aws_resources import AwsResources

        configured = settings.serve_fraud_threshold
        threshold = DEFAULT_THRESHOLD if configured is None else configured
        return cls(client, AwsResources.from_settings(settings).fraud_endpoint, threshold)

    @staticmethod
    def request_body(feature_rows: Sequence[Mapping[str, Any]]) -> bytes:
        """The JSON body sent for these rows (`{"instances": [...]}`)."""
        doc = {"instances": [dict(r) for r in feature_rows]}
        return json.dumps(doc, separators=(",", ":"), default=str).encode()

    def _invoke(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, int, list[Score]]:
        response = self.client.invoke_endpoint(
            EndpointName=self.endpoint_name,
            ContentType="application/json",
            Accept="application/json",
            Body=self.request_body(rows),
        )
        try:
            doc = json.loads(response["Body"].read())
        except ValueError:
            raise EndpointError(f"endpoint {self.endpoint_name} did not answer JSON") from None
        predictions = doc.get("predictions") if isinstance(doc, dict) else None
        if not isinstance(predictions, list) or len(predictions) != len(rows):
            raise EndpointError(f"endpoint {self.endpoint_name} did not return one prediction per row")
        try:
            probabilities = [float(p) for p in predictions]
            version = int(doc.get("model_version", 0))
        except (TypeError, ValueError):
            raise EndpointError(f"endpoint {self.endpoint_name} returned a non-numeric prediction") from None
        return (
            str(doc.get("model", self.endpoint_name)),
            version,
            self._scores(probabilities, doc.get("reasons")),
        )

    def _scores(self, probabilities: list[float], reasons: Any) -> list[Score]:
        """Probabilities with the answer's reason codes (none when the container sent none)."""
        if reasons is None:
            return [Score(p, []) for p in probabilities]
        try:
            if len(reasons) != len(probabilities):
                raise ValueError
            return [
                Score(p, [(str(r["feature"]), float(r["contribution"])) for r in row])
                for p, row in zip(probabilities, reasons, strict=True)
            ]
        except (TypeError, ValueError, KeyError):
            raise EndpointError(f"endpoint {self.endpoint_name} returned malformed reason codes") from None

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        model, version, scores = self.endpoint_name, 0, []
        for start in range(0, len(feature_rows), self.rows_per_call):
            part_model, part_version, part = self._invoke(feature_rows[start : start + self.rows_per_call])
            if scores and (part_model, part_version) != (model, version):
                raise EndpointError(f"endpoint {self.endpoint_name} changed model version within a batch")
            model, version = part_model, part_version
            scores.extend(part)
        # reason codes for the alerts only, as the in-process scorer gives them (the endpoint explains all)
        scores = [s if s.probability >= self.threshold else Score(s.probability, []) for s in scores]
        batch = ScoredBatch(model, version, self.threshold, scores)
        return batch.checked(len(feature_rows), self.endpoint_name)

    def close(self) -> None:
        """Nothing to stop (the client holds no background work)."""
