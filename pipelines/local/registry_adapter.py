"""Connects the executor's RegisterModel steps to the model-registry port.

The executor knows the model artifact, the evaluation metrics and where the run came from; the registry
also wants the feature list (read from the model itself, so it cannot disagree with it), the code
version and a data fingerprint (the input digest of the step that read the feature data). Each version
gets its model card as it is registered (`pipelines.model_cards`), and the evaluation's own narrative
(`model_card.md` beside `evaluation.json`) as the registration's card text.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.objectstore.port import ObjectStore, ObjectStoreError
from cdp.registry.port import Lineage, ModelRegistry
from cdp.registry.scoring import load_scoring_model
from cdp.registry.sources import local_model_dir
from pipelines.local.register import ModelRegistrar

if TYPE_CHECKING:
    from cdp.settings import Settings

EVALUATION_CARD = "model_card.md"  # written by every evaluate script beside evaluation.json


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


def evaluation_card(store: ObjectStore, metrics_uri: str | None) -> str | None:
    """The evaluate step's `model_card.md` beside its report, or None."""
    if not metrics_uri or "/" not in metrics_uri:
        return None
    uri = f"{metrics_uri.rsplit('/', 1)[0]}/{EVALUATION_CARD}"
    try:
        return store.get_bytes(uri).decode("utf-8") if store.exists(uri) else None
    except (ObjectStoreError, UnicodeDecodeError):
        return None


def registry_registrar(
    registry: ModelRegistry,
    store: ObjectStore,
    version: str | None = None,
    registered_by: str | None = None,
    settings: Settings | None = None,
) -> ModelRegistrar:
    """A `register` callable for `LocalPipelineExecutor` that records into `registry`, as `registered_by`
    (the identity running the pipeline: it may not approve what it registers), and writes each version's
    model card (data origin from `settings`, default the process settings)."""
    code = version or code_version()

    def register(
        model_name: str,
        artifacts_uri: str,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        approval_status: str = "PendingManualApproval",
    ) -> int:
        with local_model_dir(artifacts_uri, store) as folder:
            scoring_model = load_scoring_model(folder)
            features, kind = tuple(scoring_model.features), scoring_model.kind
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
        registered = registry.register(
            model_name, artifacts_uri, metrics, params, record, approval_status,
            model_card=evaluation_card(store, lineage.get("metrics_uri")), registered_by=registered_by,
        )  # fmt: skip
        from cdp.settings import get_settings
        from pipelines.model_cards import build_card, save

        save(registry, build_card(registered, kind, settings or get_settings()))
        return registered.version

    return register
