"""RegisterModel steps: the model package goes to the injected registrar (the model-registry port)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from cdp.objectstore.port import ObjectStore
from pipelines.local.errors import DefinitionError, StepFailedError


class ModelRegistrar(Protocol):
    """The registry port's `register` (e.g. `registry.register`): returns the new version."""

    def __call__(
        self,
        model_name: str,
        artifacts_uri: str,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        approval_status: str = "PendingManualApproval",
    ) -> Any: ...


def flatten_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """`{"metrics": {"auc": {"value": 0.9}}}` -> `{"auc": 0.9}` (numeric values only)."""
    metrics = report.get("metrics", {}) if isinstance(report, Mapping) else {}
    flat: dict[str, float] = {}
    for name, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def register_model(
    step_name: str,
    arguments: Mapping[str, Any],
    store: ObjectStore,
    registrar: ModelRegistrar,
    lineage: dict[str, Any],
) -> dict[str, Any]:
    where = f"step {step_name!r}"
    group = arguments.get("ModelPackageGroupName") or arguments.get("ModelPackageName")
    containers = arguments.get("InferenceSpecification", {}).get("Containers", [])
    if not group or not containers or "ModelDataUrl" not in containers[0]:
        raise DefinitionError(f"{where}: needs ModelPackageGroupName and a container with ModelDataUrl")
    model_uri = containers[0]["ModelDataUrl"]
    if not store.exists(model_uri):
        raise StepFailedError(f"{where}: no model artifact at {model_uri}")
    statistics = arguments.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    metrics: dict[str, float] = {}
    if statistics.get("S3Uri"):
        metrics = flatten_metrics(json.loads(store.get_bytes(statistics["S3Uri"])))
    status = arguments.get("ModelApprovalStatus") or "PendingManualApproval"
    lineage = {
        **lineage,
        "model_data_url": model_uri,
        "metrics_uri": statistics.get("S3Uri"),
        "image": containers[0].get("Image"),
    }
    version = registrar(
        model_name=group, artifacts_uri=model_uri, metrics=metrics, lineage=lineage, approval_status=status
    )
    return {
        **arguments,
        "ModelPackageArn": f"arn:aws:sagemaker:local:000000000000:model-package/{group}/{version}",
        "ModelPackageVersion": version,
        "ModelApprovalStatus": status,
    }
