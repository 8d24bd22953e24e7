"""The AWS batch transform: a SageMaker transform job running this project's inference container on the
model version's archive (`s3://.../model.tar.gz`, as the SageMaker registry stores it).

The feature rows go to S3 as JSON lines, each one `/invocations` body (`{"instances": [...]}`, at most
`rows_per_record` rows); the job sends every line as one request (`SplitType=Line`, `SingleRecord`) and
writes the answers line by line (`AssembleWith=Line`) to `<input>.out`. The container answers
`{"predictions": [...], "reasons": [[{"feature", "contribution"}, ...], ...]}` (reason codes of every row);
reason codes of rows below `reasons_from` are dropped here. The job's SageMaker model is deleted afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cdp.transform.port import Reasons, TransformError, TransformOutput

if TYPE_CHECKING:
    import pyarrow as pa

    from cdp.objectstore.port import ObjectStore
    from cdp.registry.port import ModelVersion
    from cdp.settings import Settings

ROWS_PER_RECORD = 500  # ~1 KB of JSON per feature row: far under the 6 MB request limit
PREFIX = "batch-transform"
_DONE = ("Completed", "Failed", "Stopped")


class SageMakerTransform:
    """`BatchTransform` through a `sagemaker` client and the object store (S3)."""

    def __init__(
        self,
        client: Any,
        object_store: ObjectStore,
        bucket: str,
        image_uri: str | None,
        role_arn: str | None,
        instance_type: str = "ml.m5.xlarge",
        rows_per_record: int = ROWS_PER_RECORD,
        poll_seconds: float = 15.0,
        timeout_seconds: float = 6 * 3600,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.object_store = object_store
        self.bucket = bucket
        self.image_uri = image_uri
        self.role_arn = role_arn
        self.instance_type = instance_type
        self.rows_per_record = rows_per_record
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, object_store: ObjectStore, client: Any | None = None) -> Any:
        if client is None:
            from cdp.aws_clients import aws_client

            client = aws_client(settings, "sagemaker")
        return cls(
            client,
            object_store,
            settings.lake_bucket,
            settings.inference_image_uri,
            settings.transform_role_arn,
            settings.transform_instance_type,
            poll_seconds=settings.transform_poll_seconds,
        )

    # -- the request -------------------------------------------------------------------------------
    def input_lines(self, feature_rows: pa.Table) -> bytes:
        """The job's input: one `{"instances": [...]}` document per line."""
        rows = feature_rows.to_pylist()
        lines = [
            json.dumps({"instances": rows[i : i + self.rows_per_record]}, separators=(",", ":"), default=str)
            for i in range(0, len(rows), self.rows_per_record)
        ]
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def job_request(self, job: str, input_uri: str, output_prefix: str) -> dict[str, Any]:
        """The `CreateTransformJob` request of a job over `input_uri`."""
        return {
            "TransformJobName": job,
            "ModelName": job,
            "BatchStrategy": "SingleRecord",
            "MaxPayloadInMB": 6,
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                "ContentType": "application/json",
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": output_prefix,
                "Accept": "application/json",
                "AssembleWith": "Line",
            },
            "TransformResources": {"InstanceType": self.instance_type, "InstanceCount": 1},
        }

    def model_request(self, job: str, version: ModelVersion) -> dict[str, Any]:
        """The `CreateModel` request: the inference image on the version's archive."""
        return {
            "ModelName": job,
            "ExecutionRoleArn": self.role_arn,
            "PrimaryContainer": {
                "Image": self.image_uri,
                "ModelDataUrl": version.artifacts_uri,
                "Environment": {
                    "CDP_MODEL_NAME": version.model_name,
                    "CDP_MODEL_VERSION": str(version.version),
                },
            },
        }

    # -- running it ----------------------------------------------------------------------------------
    def transform(
        self, version: ModelVersion, feature_rows: pa.Table, reasons_from: float | None
    ) -> TransformOutput:
        if not self.image_uri or not self.role_arn:
            raise TransformError(
                "a SageMaker transform needs CDP_INFERENCE_IMAGE_URI and CDP_TRANSFORM_ROLE_ARN"
            )
        if not version.artifacts_uri.startswith("s3://"):
            raise TransformError(f"model {version.model_name} v{version.version} has no S3 archive")
        if feature_rows.num_rows == 0:
            return TransformOutput(np.zeros(0), [])
        job = f"cdp-score-{uuid.uuid4().hex[:20]}"
        base = f"s3://{self.bucket}/{PREFIX}/{job}"
        input_uri, output_prefix = f"{base}/input/rows.jsonl", f"{base}/output/"
        self.object_store.put_bytes(input_uri, self.input_lines(feature_rows))
        self.client.create_model(**self.model_request(job, version))
        try:
            self.client.create_transform_job(**self.job_request(job, input_uri, output_prefix))
            self._wait(job)
        finally:
            self.client.delete_model(ModelName=job)
        answer = self.object_store.get_bytes(f"{output_prefix}rows.jsonl.out")
        return self.parse_output(answer, reasons_from).checked(feature_rows.num_rows, f"transform job {job}")

    def _wait(self, job: str) -> None:
        waited = 0.0
        while True:
            described = self.client.describe_transform_job(TransformJobName=job)
            status = described["TransformJobStatus"]
            if status == "Completed":
                return
            if status in _DONE:
                reason = str(described.get("FailureReason", "")).splitlines()[:1]
                raise TransformError(
                    f"transform job {job} {status.lower()}: {' '.join(reason) or 'no reason'}"
                )
            if waited >= self.timeout_seconds:
                self.client.stop_transform_job(TransformJobName=job)
                raise TransformError(f"transform job {job} did not finish in {self.timeout_seconds:.0f} s")
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    @staticmethod
    def parse_output(answer: bytes, reasons_from: float | None) -> TransformOutput:
        """Probabilities and reason codes from the job's output lines (one `/invocations` answer each)."""
        probabilities: list[float] = []
        reasons: list[Reasons] = []
        try:
            for line in answer.decode().splitlines():
                if not line.strip():
                    continue
                doc = json.loads(line)
                values = [float(p) for p in doc["predictions"]]
                given = doc.get("reasons") or [[] for _ in values]
                if len(given) != len(values):
                    raise ValueError
                for p, row in zip(values, given, strict=True):
                    keep = reasons_from is not None and p >= reasons_from
                    reasons.append(
                        [(str(r["feature"]), float(r["contribution"])) for r in row] if keep else []
                    )
                probabilities.extend(values)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise TransformError("the transform job's output is not one answer per input line") from None
        return TransformOutput(np.asarray(probabilities, dtype=np.float64), reasons)
