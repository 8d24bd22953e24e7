"""Run a model's pipeline definition here with the local executor, registering what it produces.

The library behind `run-pipeline --local` (pipelines.cli), the monitoring loop's retraining action and
the demo.
"""

from __future__ import annotations

from collections.abc import Callable
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
    parameters: dict[str, str] | None = None,
    *,
    use_cache: bool = True,
    scripts_dir: Path | None = None,
    bucket: str | None = None,
    region: str | None = None,
    registered_by: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Any, Path]:
    """Build `model`'s definition and run it with the local executor; returns (run record, run folder).

    `registered_by` is the identity running it, recorded with the versions it registers. `progress` gets
    one line per step as it finishes, the model's name first: `fraud Train: Succeeded (41.2 s, CPU
    80.5 s, peak 2.3 GB)` (see `StepRecord.summary`)."""
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
    record = executor.run(definition, pipeline_name=spec_of(model).pipeline_name, parameters=parameters or {})
    return record, executor.run_dir(record.execution_id)
