"""Run a model's pipeline definition here with the local executor, registering what it produces.

The library behind `run-pipeline --local` (pipelines.cli), the monitoring loop's retraining action and
the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def registrar(backends: Any, registered_by: str | None):  # noqa: ANN201 - a ModelRegistrar
    """The local executor's `RegisterModel` step: the backends' model registry and object store, with
    `registered_by` recorded as the registrant of every version it registers."""
    from pipelines.local.registry_adapter import registry_registrar

    registry, store = backends.model_registry, backends.object_store
    return registry_registrar(registry, store, registered_by=registered_by, settings=backends.settings)


def run_local_pipeline(
    model: str,
    backends: Any = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    use_cache: bool = True,
    scripts_dir: Path | None = None,
    bucket: str | None = None,
    region: str | None = None,
    registered_by: str | None = None,
    progress: Callable[[str], None] | None = None,
    from_step: str | None = None,
    track: bool = True,
) -> tuple[Any, Path]:
    """Build `model`'s definition and run it with the local executor; returns (run record, run folder).

    `parameters` override the definition's parameters, the model's hyperparameters among them
    (`MaxDepth`, `Eta`, ...: `pipelines.spec`); an unknown name or a value that does not fit its
    parameter's type raises a one-line `ExecutorError` before any step runs.

    `registered_by` is the identity running it, recorded with the versions it registers. `progress` gets
    one line per step as it finishes, the model's name first: `fraud Train: Succeeded (41.2 s, CPU
    80.5 s, peak 2.3 GB)` (see `StepRecord.summary`), and a line saying why when a step is not taken
    from the cache. `from_step` reruns from that step, reusing the upstream steps' outputs of the
    latest run that has them; an unknown step, or no such run, raises `ExecutorError` before any step.
    With `track` the finished run is logged to the model's MLflow experiment (`pipelines.tracking`); a
    tracking failure is reported on `progress` and does not change the run's outcome."""
    from cdp.backends import Backends
    from pipelines.definition import build_definition
    from pipelines.local import LocalPipelineExecutor
    from pipelines.models import spec_of

    backends = backends or Backends()
    settings = backends.settings
    definition = build_definition(
        model,
        bucket=bucket or settings.lake_bucket,
        region=region or settings.aws_region,
        scripts_dir=scripts_dir,
        object_store=backends.object_store,
        inference_image=settings.inference_image_uri,
    )
    executor = LocalPipelineExecutor(
        backends.object_store,
        query_to_files=backends.catalog.query_to_files,
        register=registrar(backends, registered_by),
        work_dir=settings.state_dir / "pipelines",
        use_cache=use_cache,
        progress=(lambda line: progress(f"{model} {line}")) if progress else None,
    )
    record = executor.run(
        definition,
        pipeline_name=spec_of(model).pipeline_name,
        parameters=parameters or {},
        from_step=from_step,
    )
    run_dir = executor.run_dir(record.execution_id)
    if track:
        _track(backends, model, record, run_dir, registered_by, progress)
    return record, run_dir


def _track(
    backends: Any,
    model: str,
    record: Any,
    run_dir: Path,
    run_by: str | None,
    progress: Callable[[str], None] | None,
) -> None:
    """Log the run to MLflow; a failure to log is one progress line (the model run itself stands)."""
    from mlflow.exceptions import MlflowException

    from cdp.tracking.port import TrackingError, experiment_name
    from pipelines.tracking import track_pipeline_run

    try:
        run_id = track_pipeline_run(
            backends.experiment_tracker, backends.object_store, model, record, run_dir, run_by
        )
    except (TrackingError, MlflowException, OSError, ValueError) as e:
        line = f"{model} tracking: not logged ({' '.join(str(e).split())})"
    else:
        line = f"{model} tracked: MLflow run {run_id} in experiment {experiment_name(model)}"
    if progress is not None:
        progress(line)
