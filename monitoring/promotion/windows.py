"""When each model version's training data ends: the newest event its training set held.

A fraud version was trained on a time-split training set (`features.training`), whose manifest in the lake
(`s3://<bucket>/training_sets/fraud_card/<set_id>/manifest.json`) records the first and last event time of
every split. The version's manifest is the one whose data snapshot hash equals its lineage's; failing that,
the newest manifest written before the version was registered (the pipeline reads the training set in force
when it runs). The window ends at the last event the model was fitted on: its train and validation splits
(validation drives early stopping). Test rows were only scored, by the pipeline's quality gate, so they
remain a fair holdout: the newest labelled data is in the test split of every retrained candidate, and a
window ending at the test split would leave no labelled row to compare a candidate and its champion on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdp.backends import Backends
from cdp.registry.port import ModelVersion

FRAUD_VIEW = "fraud_card"


@dataclass(frozen=True)
class TrainingWindow:
    """The newest event a version's training set held, and the manifest that says so."""

    version: int
    last_event: datetime
    manifest_uri: str
    matched_by: str  # "snapshot-hash" | "registered-after"


def training_set_manifests(backends: Backends, view: str = FRAUD_VIEW) -> list[dict[str, Any]]:
    """Every training-set manifest of `view` in the lake, oldest first."""
    prefix = f"s3://{backends.settings.lake_bucket}/training_sets/{view}/"
    manifests = []
    for obj in backends.object_store.list(prefix):
        if obj.uri.endswith("/manifest.json"):
            manifests.append(json.loads(backends.object_store.get_bytes(obj.uri)))
    return sorted(manifests, key=lambda m: str(m.get("created_at", "")))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


FITTED_SPLITS = ("train", "validation")


def _last_event(manifest: dict[str, Any]) -> datetime | None:
    splits = manifest.get("splits", {})
    ends = [splits[name].get("last_ts") for name in FITTED_SPLITS if splits.get(name, {}).get("last_ts")]
    return max(datetime.fromisoformat(t) for t in ends) if ends else None


def training_window(version: ModelVersion, manifests: list[dict[str, Any]]) -> TrainingWindow | None:
    """The version's training window, or None when no manifest can be tied to it."""
    wanted = version.lineage.data_snapshot_hash.removeprefix("sha256:")
    chosen = next((m for m in reversed(manifests) if m.get("data_snapshot_sha256") == wanted), None)
    matched_by = "snapshot-hash"
    if chosen is None:
        registered = _aware(version.created_at)
        earlier = [
            m
            for m in manifests
            if m.get("created_at") and _aware(datetime.fromisoformat(m["created_at"])) <= registered
        ]
        chosen, matched_by = (earlier[-1] if earlier else None), "registered-after"
    if chosen is None:
        return None
    last = _last_event(chosen)
    if last is None:
        return None
    return TrainingWindow(version.version, last, str(chosen.get("manifest_uri", "")), matched_by)
