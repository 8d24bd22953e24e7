"""Training a fraud variant in the notebook's process, tracked in the model's MLflow experiment.

The same code as the pipeline's steps, in memory: `training.fraud.preprocess.split_frames` (encoding,
down-sampling), `training.fraud.train.train_booster` and `save_model`, `training.fraud.evaluate.evaluate`
(metrics on the test split, plots, model card). The run logs its hyperparameters, metrics, plots, the
feature manifest (the training set's and the model's feature spec), the model folder, and what reproduces
it (git commit, lock-file hash, data snapshot hash), in the experiment `run-pipeline --local` logs to.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.notebook.training_sets import TrainingSet
from cdp.tracking.port import ExperimentTracker, experiment_name
from cdp.tracking.reproduce import reproducibility_tags
from inference.loaded import LoadedModel, load_folder
from pipelines.local.register import flatten_metrics
from pipelines.models import spec_of

SOURCE = "notebook"


@dataclass(frozen=True)
class TrainingRun:
    """A model trained in the notebook: its folder, test metrics, parameters and tracked run."""

    model: str  # the pipeline's model name (fraud)
    registered_name: str  # the registry's model name (cdp-fraud)
    model_dir: Path
    metrics: dict[str, float]
    params: dict[str, str]
    features: tuple[str, ...]  # the model's encoded features, in its order
    data_snapshot_hash: str
    run_id: str
    experiment: str
    plots: dict[str, Path] = field(default_factory=dict)
    model_card: str | None = None

    def load(self) -> LoadedModel:
        """The trained model loaded as serving would load it (booster, feature spec, metrics)."""
        return load_folder(self.model_dir, self.registered_name, 0, self.metrics)


def _arguments(hyperparameters: Mapping[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in hyperparameters.items():
        argv += [f"--{name}", str(value)]
    return argv


def train_fraud(
    training_set: TrainingSet,
    tracker: ExperimentTracker,
    work_root: Path,
    *,
    hyperparameters: Mapping[str, Any] | None = None,
    negative_sample_rate: str | float = 1.0,
    run_name: str | None = None,
    run_by: str | None = None,
) -> TrainingRun:
    """Train, evaluate and track one fraud variant; returns the run (the model folder stays under
    `work_root/<run>/model` for `Platform.register`)."""
    from training.fraud.evaluate import PLOTS, evaluate
    from training.fraud.preprocess import split_frames
    from training.fraud.train import parse_hyperparameters, save_model, train_booster

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = work_root / f"{stamp}-{secrets.token_hex(3)}"
    args = parse_hyperparameters(_arguments(hyperparameters or {}))
    parts, spec = split_frames(training_set.frame, negative_sample_rate=negative_sample_rate)
    booster, summary = train_booster(parts["train"], parts["validation"], spec["features"], args)
    model_dir = folder / "model"
    save_model(model_dir, booster, spec, summary, args)
    test_dir = folder / "test"
    test_dir.mkdir(parents=True)
    parts["test"].to_parquet(test_dir / "test.parquet", index=False)
    report = evaluate(model_dir, test_dir, folder / "evaluation")
    metrics = flatten_metrics(report)
    params = {k: str(v) for k, v in vars(args).items() if k != "nthread"}
    params["negative_sample_rate"] = str(negative_sample_rate)
    plots = {name: folder / "evaluation" / file for name, file in PLOTS.items()}
    card_path = folder / "evaluation" / "model_card.md"

    tags = {"cdp.source": SOURCE, "cdp.pipeline": training_set.model}
    tags.update(reproducibility_tags(training_set.data_snapshot_hash))
    if run_by:
        tags["cdp.run_by"] = run_by
    experiment = experiment_name(training_set.model)
    with tracker.start_run(experiment, run_name or f"notebook {stamp}", tags) as run:
        run.log_params(params)
        run.log_metrics(metrics)
        run.log_metrics({f"training.{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
        for path in plots.values():
            if path.is_file():
                run.log_file(path, "plots")
        run.log_file(folder / "evaluation" / "evaluation.json", "evaluation")
        run.log_json(training_set.manifest(), "features/manifest.json")
        run.log_file(model_dir, "model")
    return TrainingRun(
        model=training_set.model,
        registered_name=spec_of(training_set.model).model_package_group,
        model_dir=model_dir,
        metrics=metrics,
        params=params,
        features=tuple(spec["features"]),
        data_snapshot_hash=training_set.data_snapshot_hash,
        run_id=run.run_id,
        experiment=experiment,
        plots={k: v for k, v in plots.items() if v.is_file()},
        model_card=card_path.read_text() if card_path.is_file() else None,
    )
