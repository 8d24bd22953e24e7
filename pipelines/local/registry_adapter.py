"""Connects the executor's RegisterModel steps to the model-registry port.

The executor knows the model artifact, the evaluation metrics and where the run came from; the registry
also wants the feature list (read from the model itself, so it cannot disagree with it), the code
version and a data fingerprint (the input digest of the step that read the feature data).
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from cdp.objectstore.port import ObjectStore
from cdp.registry.port import Lineage, ModelRegistry
from cdp.registry.scoring import load_scoring_model
from cdp.registry.sources import local_model_dir
from pipelines.local.register import ModelRegistrar


def code_version() -> str:
    """The git commit of the working tree when there is one, else the installed package version."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if commit:
            return f"git:{commit}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"cdp-platform=={metadata.version('cdp-platform')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def registry_registrar(
    registry: ModelRegistry, store: ObjectStore, version: str | None = None, registered_by: str | None = None
) -> ModelRegistrar:
    """A `register` callable for `LocalPipelineExecutor` that records into `registry`, as `registered_by`
    (the identity running the pipeline: it may not approve what it registers)."""
    code = version or code_version()

    def register(
        model_name: str,
        artifacts_uri: str,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        approval_status: str = "PendingManualApproval",
    ) -> int:
        with local_model_dir(artifacts_uri, store) as folder:
            features = tuple(load_scoring_model(folder).features)
        run_id = f"{lineage.get('pipeline_name')}/{lineage.get('execution_id')}"
        record = Lineage(
            data_snapshot_hash=str(lineage.get("data_snapshot_hash") or lineage.get("definition_sha256")),
            features=features,
            code_version=code,
            pipeline_run_id=run_id,
        )
        params = {
            "pipeline": str(lineage.get("pipeline_name")),
            "definition_sha256": str(lineage.get("definition_sha256")),
            "register_step": str(lineage.get("step")),
        }
        return registry.register(
            model_name, artifacts_uri, metrics, params, record, approval_status, registered_by=registered_by
        ).version

    return register
