"""Shared helpers of the pipeline tests: offline definitions, a small generated lake, a recording registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import TableInfo
from cdp.objectstore.local import FolderObjectStore

SCRIPTS = Path(__file__).parent / "pipeline_scripts"
BUCKET = "cdp-lake"
REGION = "eu-west-1"
ROLE = "arn:aws:iam::123456789012:role/cdp-sagemaker-execution"
PROCESSING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdp-processing:1"
TRAINING_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdp-training:1"


def build(model: str, store: FolderObjectStore | None = None) -> dict[str, Any]:
    """The model's definition built offline against the test scripts (uploads copied into `store`)."""
    from pipelines.definition import build_definition

    return build_definition(
        model,
        bucket=BUCKET,
        region=REGION,
        role=ROLE,
        scripts_dir=SCRIPTS / model,
        object_store=store,
        processing_image=PROCESSING_IMAGE,
        training_image=TRAINING_IMAGE,
    )


@dataclass
class RecordingRegistry:
    """An in-memory model registry: versions count up per model, every registration is kept."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def register(
        self,
        model_name: str,
        artifacts_uri: str,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        approval_status: str = "PendingManualApproval",
    ) -> int:
        version = 1 + sum(1 for e in self.entries if e["model_name"] == model_name)
        self.entries.append(
            {
                "model_name": model_name,
                "artifacts_uri": artifacts_uri,
                "metrics": metrics,
                "lineage": lineage,
                "approval_status": approval_status,
                "version": version,
            }
        )
        return version


def _fraud(rng: np.random.Generator, n: int) -> pa.Table:
    amount = rng.lognormal(3.5, 1.0, n)
    velocity = rng.poisson(2, n).astype(float)
    new_merchant = rng.integers(0, 2, n).astype(float)
    logit = -5 + 0.8 * velocity + 1.5 * new_merchant + 0.002 * amount
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    start = np.datetime64("2019-01-01T00:00:00")
    times = start + np.sort(rng.integers(0, 365 * 86400, n)).astype("timedelta64[s]")
    return pa.table(
        {
            "event_time": times,
            "amount": amount,
            "velocity_24h": velocity,
            "is_new_merchant": new_merchant,
            "is_fraud": fraud.astype(np.int8),
        }
    )


def _clv(rng: np.random.Generator, n: int) -> pa.Table:
    spend = rng.gamma(2.0, 1500.0, n)
    count = rng.poisson(spend / 60 + 5).astype(float)
    tenure = rng.uniform(0, 20, n)
    future = 0.7 * spend + 25 * tenure + rng.normal(0, 300, n)
    return pa.table(
        {
            "customer_id": np.arange(n),
            "spend_last_12m": spend,
            "txn_count_12m": count,
            "tenure_years": tenure,
            "future_value_12m": future,
        }
    )


def _segmentation(rng: np.random.Generator, n: int) -> pa.Table:
    centres = np.array([[10, 80, 4000, 0.1], [60, 20, 900, 0.7], [200, 5, 300, 0.3]])
    spread = np.array([5, 8, 500, 0.05])
    persona = rng.integers(0, 3, n)
    x = centres[persona] + rng.normal(0, 1, (n, 4)) * spread
    return pa.table(
        {
            "customer_id": np.arange(n),
            "recency_days": x[:, 0],
            "frequency": x[:, 1],
            "monetary": x[:, 2],
            "online_share": x[:, 3],
        }
    )


TABLES = {
    "fraud_training_set": (_fraud, 3000),
    "clv_training_set": (_clv, 600),
    "segmentation_training_set": (_segmentation, 450),
}


def generate_lake(store: FolderObjectStore, catalog: DuckDbCatalog, seed: int = 7) -> None:
    """Write the three models' feature tables to the lake and register them in the catalog."""
    rng = np.random.default_rng(seed)
    for name, (make, rows) in TABLES.items():
        table = make(rng, rows)
        location = f"s3://{BUCKET}/features/{name}/"
        path = store.local_path(location + "part-0.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        catalog.register_table(TableInfo(name=name, location=location, schema=table.schema))
