"""Fraud pipeline: per-transaction fraud probability (gradient-boosted trees), split by time.

Gates: PR-AUC on the time-based test split, and the ratio of that PR-AUC to the raw-columns baseline's.

`NegativeSampleRate` (Preprocess `--negative-sample-rate`): the share of genuine train rows kept, the
rest weighted up ("auto": every row up to preprocess.py's budget of genuine train rows, see its docstring
and bench/results/fraud_training.json for the figures). Validation and test keep every row.

Sizing (bench/results/fraud_training.json, 22.3M rows, the size of the full IBM data set): Preprocess
streams and peaks at 0.63 GB whatever the row count (100 s), Evaluate at 1.8 GB (1.19M test rows), so
processing takes ml.m5.large (8 GB, 2 vCPU). Train peaks at 2.25 GB with "auto" down-sampling (4.0M of
19.6M train rows) and 7.0 GB with every row (about 0.36 GB per million train rows): ml.m5.xlarge (16 GB,
4 vCPU) holds either on one host. `TrainingInstanceCount` > 1 trains one XGBoost collective across the
hosts, each with its shard of the train rows (Preprocess writes one train file per host); worth it only
past ~30M train rows per host with `NegativeSampleRate` 1, since "auto" caps the train rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.spec import Gate, InstanceSizing, ModelPipelineSpec, ScriptParameter

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from pipelines.builder import CdpPipeline

SPEC = ModelPipelineSpec(
    model="fraud",
    description="Per-transaction fraud probability on behavioural features.",
    feature_query="SELECT * FROM fraud_training_set",
    gates=(
        Gate(metric="pr_auc", parameter="MinPrAuc", threshold=0.10, comparison=">="),
        Gate(
            metric="pr_auc_lift_over_baseline",
            parameter="MinLiftOverBaseline",
            threshold=1.0,
            comparison=">=",
        ),
    ),
    # each a pipeline parameter (MaxDepth, Eta, NumRound, MinChildWeight, Seed); the others keep train.py's
    # defaults
    hyperparameters={"max_depth": 6, "eta": 0.1, "num_round": 300, "min_child_weight": 1.0, "seed": 7},
    framework="xgboost",
    preprocess_parameters=(
        ScriptParameter(
            name="NegativeSampleRate",
            argument="--negative-sample-rate",
            default="auto",
            description="share of genuine train rows kept (0 < rate <= 1), or auto",
        ),
    ),
    sizing=InstanceSizing(
        processing_type="ml.m5.large",
        training_type="ml.m5.xlarge",
        basis="preprocess 0.63 GB, evaluate 1.8 GB; train 2.25 GB (auto) / 7.0 GB (every row) at 22.3M rows",
    ),
    distributed_training=True,
)


def get_pipeline(
    session: PipelineSession, role: str, bucket: str, *, scripts_dir: Path | None = None, **options: Any
) -> CdpPipeline:
    """The fraud pipeline (options: feature_query, processing_image, training_image, athena_database, ...)."""
    from pipelines.builder import build_pipeline

    return build_pipeline(SPEC, session, role, bucket, scripts_dir=scripts_dir, **options)
