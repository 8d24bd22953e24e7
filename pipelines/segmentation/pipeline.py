"""Segmentation pipeline: clusters on behaviour (RFM, spending mix, channel use) and profile.

Gate: the silhouette score of the clusters on the holdout customers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.spec import Gate, InstanceSizing, ModelPipelineSpec

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.builder import CdpPipeline

SPEC = ModelPipelineSpec(
    model="segmentation",
    description="Named, stable customer segments.",
    feature_query="SELECT * FROM segmentation_training_set",
    gates=(Gate(metric="silhouette", parameter="MinSilhouette", threshold=0.10, comparison=">="),),
    hyperparameters={"n_clusters": 6, "seed": 7},
    framework="sklearn",
    sizing=InstanceSizing(
        processing_type="ml.m5.large",
        training_type="ml.m5.large",
        basis="one row per customer (2,000 at full size): megabytes; the smallest size",
    ),
)


def get_pipeline(
    session: PipelineSession, role: str, bucket: str, *, scripts_dir: Path | None = None, **options: Any
) -> CdpPipeline:
    """The segmentation pipeline (options: feature_query, processing_image, training_image, ...)."""
    from pipelines.builder import build_pipeline

    return build_pipeline(SPEC, session, role, bucket, scripts_dir=scripts_dir, **options)
