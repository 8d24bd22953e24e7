"""CLV pipeline: each customer's value over the next 12 months from the history up to a cut-off.

Gate: the model's RMSE divided by the last-12-months heuristic's RMSE on the same holdout must not exceed
`MaxRmseRatio` (below 1.0 means the model beats the heuristic).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.spec import Gate, InstanceSizing, ModelPipelineSpec

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.builder import CdpPipeline

SPEC = ModelPipelineSpec(
    model="clv",
    description="Customer value over the next 12 months.",
    feature_query="SELECT * FROM clv_training_set",
    gates=(Gate(metric="rmse_ratio_to_heuristic", parameter="MaxRmseRatio", threshold=1.0, comparison="<="),),
    hyperparameters={
        "max_depth": 4,
        "eta": 0.05,
        "num_round": 400,
        "objective": "reg:squarederror",
        "seed": 7,
    },
    framework="xgboost",
    sizing=InstanceSizing(
        processing_type="ml.m5.large",
        training_type="ml.m5.large",
        basis="one row per customer (2,000 at full size): megabytes; the smallest size",
    ),
)


def get_pipeline(
    session: PipelineSession, role: str, bucket: str, *, scripts_dir: Path | None = None, **options: Any
) -> CdpPipeline:
    """The CLV pipeline (options: feature_query, processing_image, training_image, athena_database, ...)."""
    from pipelines.builder import build_pipeline

    return build_pipeline(SPEC, session, role, bucket, scripts_dir=scripts_dir, **options)
