"""Log a finished local pipeline run to the model's MLflow experiment (`run-pipeline --local`).

What is logged: the pipeline parameters and the training step's hyperparameters; the evaluation
metrics; the evaluation's plots, report and model card; the feature manifest (the preprocess step's
feature spec and the feature query); the run record; and what reproduces the run (git commit, lock-file
hash, and the data fingerprint the registry's lineage also uses: the input digest of the step that read
the feature data). Every value and text file is checked for personal data before it is logged.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cdp.objectstore.port import ObjectStore
from cdp.tracking.port import ExperimentTracker, experiment_name
from cdp.tracking.reproduce import reproducibility_tags
from pipelines.local.record import RunRecord
from pipelines.local.register import flatten_metrics

EVALUATION_OUTPUT = "evaluation"
FEATURES_OUTPUT = "train"
SOURCE = "run-pipeline --local"


def _outputs(record: RunRecord, name: str) -> list[str]:
    uris = []
    for step in record.steps:
        for item in step.properties.get("ProcessingOutputConfig", {}).get("Outputs", []) or []:
            if item.get("OutputName") == name and "S3Output" in item:
                uris.append(item["S3Output"]["S3Uri"].rstrip("/") + "/")
    return uris


def _feature_query(record: RunRecord) -> str | None:
    for step in record.steps:
        for item in step.properties.get("ProcessingInputs", []) or []:
            query = item.get("DatasetDefinition", {}).get("AthenaDatasetDefinition", {}).get("QueryString")
            if query:
                return str(query)
    return None


def _hyperparameters(record: RunRecord) -> dict[str, str]:
    for step in record.steps:
        if step.type == "Training" and step.properties.get("HyperParameters"):
            return {str(k): str(v) for k, v in step.properties["HyperParameters"].items()}
    return {}


def _download(store: ObjectStore, prefix: str, into: Path, suffixes: tuple[str, ...]) -> list[Path]:
    files = []
    for obj in store.list(prefix):
        name = obj.uri[len(prefix) :]
        if "/" in name or not name.endswith(suffixes):
            continue
        path = into / name
        path.write_bytes(store.get_bytes(obj.uri))
        files.append(path)
    return files


def track_pipeline_run(
    tracker: ExperimentTracker,
    store: ObjectStore,
    model: str,
    record: RunRecord,
    run_dir: Path,
    run_by: str | None = None,
) -> str:
    """Log `record` (a finished run of `model`'s pipeline) to `<model>-experiments`; returns the run id."""
    data_fingerprint = next(
        (s.input_digest for s in record.steps if s.type == "Processing" and s.input_digest), None
    )
    register = next((s for s in record.steps if s.type == "RegisterModel" and s.properties), None)
    tags = {
        "cdp.source": SOURCE,
        "cdp.pipeline": model,
        "cdp.execution_id": record.execution_id,
        "cdp.definition_sha256": record.definition_sha256,
        "cdp.status": record.status,
        **reproducibility_tags(data_fingerprint),
    }
    if run_by:
        tags["cdp.run_by"] = run_by
    if register is not None:
        tags["cdp.registered_model"] = str(register.properties.get("ModelPackageGroupName"))
        tags["cdp.registered_version"] = str(register.properties.get("ModelPackageVersion"))
    with tracker.start_run(experiment_name(model), f"pipeline {record.execution_id}", tags) as run:
        run.log_params({**record.parameters, **_hyperparameters(record)})
        query = _feature_query(record)
        if query:
            run.log_params({"feature_query": query})
        with tempfile.TemporaryDirectory(prefix="cdp-track-") as tmp:
            evaluation, features = Path(tmp) / "evaluation", Path(tmp) / "features"
            evaluation.mkdir()
            features.mkdir()
            for prefix in _outputs(record, EVALUATION_OUTPUT):
                for path in _download(store, prefix, evaluation, (".json", ".png", ".md")):
                    if path.name == "evaluation.json":
                        run.log_metrics(flatten_metrics(json.loads(path.read_text())))
                    run.log_file(path, "plots" if path.suffix == ".png" else "evaluation")
            for prefix in _outputs(record, FEATURES_OUTPUT):
                for path in _download(store, prefix, features, (".json",)):
                    run.log_file(path, "features")
        if (run_dir / "run.json").is_file():
            run.log_file(run_dir / "run.json", "pipeline")
        return run.run_id
