"""What differs between the model pipelines, as plain data (no SageMaker SDK here).

Every pipeline has the same shape: Preprocess (feature query from the lake) -> Train (script mode) ->
Evaluate (writes `evaluation.json`) -> Gate (every metric against a threshold parameter) -> Register
(PendingManualApproval, metrics attached) or Fail (a message naming the metrics and thresholds).

Every model hyperparameter of a spec is a pipeline parameter of its own, so a run (or a variant a data
scientist trained in a notebook) can set it without editing the spec. The parameter's name is the
hyperparameter's snake_case name in PascalCase, like the pipeline's other parameters: `max_depth` ->
`MaxDepth`, `eta` -> `Eta`, `num_round` -> `NumRound`, `n_clusters` -> `NClusters`
(`hyperparameter_parameter`). Its type follows the spec value: int -> Integer, float -> Float,
str -> String; its default is the spec value. The Train step's hyperparameter references it, turned into
a string at run time as SageMaker's CreateTrainingJob wants (`Std:Join` over `Parameters.<Name>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = REPO_ROOT / "training"


HyperparameterValue = str | int | float


def hyperparameter_parameter(name: str) -> str:
    """The pipeline parameter of hyperparameter `name`: `max_depth` -> `MaxDepth`, `eta` -> `Eta`."""
    parts = [part for part in name.split("_") if part]
    if not parts or not all(part.isalnum() for part in parts):
        raise ValueError(f"hyperparameter name {name!r} is not snake_case letters and digits")
    return "".join(part[0].upper() + part[1:] for part in parts)


def hyperparameter_type(value: HyperparameterValue) -> str:
    """The pipeline parameter type of a hyperparameter's default: `Integer`, `Float` or `String`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a hyperparameter default is an int, a float or a str, not {type(value).__name__}")
    return "Integer" if isinstance(value, int) else "Float" if isinstance(value, float) else "String"


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
    hyperparameters: Mapping[str, HyperparameterValue] = field(default_factory=dict)
    framework: Literal["xgboost", "sklearn"] = "xgboost"
    preprocess_parameters: tuple[ScriptParameter, ...] = ()
    sizing: InstanceSizing = field(default_factory=InstanceSizing)
    # Train runs as one XGBoost collective over `TrainingInstanceCount` hosts: the train channel is
    # sharded by S3 key and Preprocess writes one train file per host (`--files-per-split`).
    distributed_training: bool = False

    def __post_init__(self) -> None:
        names = [hyperparameter_parameter(name) for name in self.hyperparameters]
        for value in self.hyperparameters.values():
            hyperparameter_type(value)
        taken = [g.parameter for g in self.gates] + [p.name for p in self.preprocess_parameters]
        clashes = sorted({n for n in names if names.count(n) > 1 or n in taken})
        if clashes:
            raise ValueError(f"pipeline {self.model}: parameter name(s) taken twice: {clashes}")

    @property
    def hyperparameter_parameters(self) -> dict[str, str]:
        """Hyperparameter name -> the name of its pipeline parameter (`hyperparameter_parameter`)."""
        return {name: hyperparameter_parameter(name) for name in self.hyperparameters}

    def hyperparameter_overrides(self, hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
        """A variant's hyperparameters as the pipeline parameters that set them: `{"max_depth": 4}` ->
        `{"MaxDepth": 4}`. A hyperparameter the pipeline does not take is a `ValueError` listing those
        it does."""
        names = self.hyperparameter_parameters
        unknown = sorted(set(hyperparameters) - set(names))
        if unknown:
            raise ValueError(
                f"pipeline {self.model} takes no hyperparameter {', '.join(repr(n) for n in unknown)}; "
                f"it takes {', '.join(names)}"
            )
        return {names[name]: value for name, value in hyperparameters.items()}

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
