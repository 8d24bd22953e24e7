"""What differs between the model pipelines, as plain data (no SageMaker SDK here).

Every pipeline has the same shape: Preprocess (feature query from the lake) -> Train (script mode) ->
Evaluate (writes `evaluation.json`) -> Gate (every metric against a threshold parameter) -> Register
(PendingManualApproval, metrics attached) or Fail (a message naming the metrics and thresholds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = REPO_ROOT / "training"


@dataclass(frozen=True)
class Gate:
    """One quality gate: a metric of `evaluation.json` against a threshold pipeline parameter."""

    metric: str
    parameter: str
    threshold: float
    comparison: Literal[">=", "<="]

    def describe(self) -> str:
        return f"{self.metric} {self.comparison} {self.parameter}"


@dataclass(frozen=True)
class ScriptParameter:
    """A pipeline parameter handed to the Preprocess script as `<argument> <value>`."""

    name: str
    argument: str
    default: str
    description: str = ""


@dataclass(frozen=True)
class InstanceSizing:
    """Default machines of a pipeline's SageMaker jobs (each a pipeline parameter a run can override):
    `ProcessingInstanceType` / `ProcessingInstanceCount` for Preprocess and Evaluate,
    `TrainingInstanceType` / `TrainingInstanceCount` for Train. `basis`: the figures that decide them."""

    processing_type: str = "ml.m5.large"
    training_type: str = "ml.m5.large"
    processing_count: int = 1
    training_count: int = 1
    basis: str = ""


@dataclass(frozen=True)
class ModelPipelineSpec:
    """Everything a model's pipeline definition is built from."""

    model: str
    description: str
    feature_query: str  # DuckDB SQL over the lake's catalog; transpiled to Athena in the definition
    gates: tuple[Gate, ...]
    hyperparameters: Mapping[str, str | int | float] = field(default_factory=dict)
    framework: Literal["xgboost", "sklearn"] = "xgboost"
    preprocess_parameters: tuple[ScriptParameter, ...] = ()
    sizing: InstanceSizing = field(default_factory=InstanceSizing)
    # Train runs as one XGBoost collective over `TrainingInstanceCount` hosts: the train channel is
    # sharded by S3 key and Preprocess writes one train file per host (`--files-per-split`).
    distributed_training: bool = False

    @property
    def pipeline_name(self) -> str:
        return f"cdp-{self.model}"

    @property
    def model_package_group(self) -> str:
        return f"cdp-{self.model}"

    @property
    def default_scripts_dir(self) -> Path:
        """`training/<model>/`: the model's preprocess.py, train.py and evaluate.py."""
        return TRAINING_DIR / self.model
