"""Reading a SageMaker model package into a `ModelVersion`, whoever created it.

Three shapes are read:
- registered by this adapter (`CustomerMetadataProperties` holds `registration_uri`): params, lineage,
  plots and model card from `registration.json`; the metrics report is `{"metrics": {name: {"value": x}}}`
  (the pipeline's `evaluation.json` shape), or `{"metrics": {name: x}}` for packages registered before;
- registered by a pipeline's RegisterModel step (no customer metadata): the model is the inference
  container's `ModelDataUrl` (the training step's `model.tar.gz`), the metrics come from the evaluation
  report that `ModelMetrics.ModelQuality.Statistics` points at, its plots and model card beside it; the
  lineage from the scalars a step may set in `CustomerMetadataProperties` (`data_snapshot_hash`,
  `code_version`, `pipeline_run_id`, `registered_by`), else `MetadataProperties` (`GeneratedBy`: the
  pipeline execution ARN, `CommitId`); the feature list and hyperparameters from the archive's
  `features.json` when the training script wrote one (the archive is read once per URI).
A package whose metrics or model location cannot be read raises `UnreadableVersionError`, one line
naming the package ARN.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.objectstore.port import ObjectStoreError
from cdp.registry.port import RETIRED, Lineage, ModelVersion, UnreadableVersionError

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore

REGISTRATION_URI = "registration_uri"  # CustomerMetadataProperties key of this adapter's packages
REGISTERED_BY = "registered_by"  # CustomerMetadataProperties key: the registering identity
RETIRED_KEY = "cdp:retired"  # CustomerMetadataProperties key: when the (Rejected) package was retired
FEATURES_FILE = "features.json"  # written by the training scripts into the model folder
_MAX_FEATURES_FILE = 1 << 20


def package_status(package: Mapping[str, Any]) -> str:
    """The port's status of a package: its `ModelApprovalStatus`, or `Retired` when it carries the
    retirement mark (a retired package is Rejected for SageMaker)."""
    if RETIRED_KEY in (package.get("CustomerMetadataProperties") or {}):
        return RETIRED
    return str(package["ModelApprovalStatus"])


class PackageReader:
    """Describes packages, reading their S3 documents through `store`. Archive feature lists are cached
    by URI (an archive is never rewritten)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._archive_docs: dict[str, Mapping[str, Any]] = {}

    def describe(self, package: Mapping[str, Any], champion: int | None) -> ModelVersion:
        arn = str(package.get("ModelPackageArn", "?"))
        meta = package.get("CustomerMetadataProperties") or {}
        metrics_uri, report = self._report(package, arn)
        metrics = _metric_values(report, arn)
        if REGISTRATION_URI in meta:
            registration = self._json(meta[REGISTRATION_URI], arn, "registration record")
            try:
                params = {str(k): str(v) for k, v in registration["params"].items()}
                lineage = Lineage.from_dict(registration["lineage"])
                plots = {str(k): str(v) for k, v in registration["plots"].items()}
                card = registration.get("model_card_uri")
                artifacts_uri = str(meta["artifacts_uri"])
            except (KeyError, TypeError, AttributeError, ValueError):
                raise UnreadableVersionError(
                    f"model package {arn}: its registration record is malformed"
                ) from None
        else:
            artifacts_uri = _model_data_url(package, arn)
            document = self._features_document(artifacts_uri, arn)
            hyperparameters = document.get("hyperparameters")
            hyperparameters = hyperparameters if isinstance(hyperparameters, dict) else {}
            params = {str(k): str(v) for k, v in hyperparameters.items()}
            lineage = _pipeline_lineage(package, document)
            plots, card = _report_files(report, metrics_uri)
        version = int(package["ModelPackageVersion"])
        return ModelVersion(
            model_name=str(package["ModelPackageGroupName"]),
            version=version,
            status=package_status(package),
            is_champion=champion == version,
            metrics=metrics,
            params=params,
            lineage=lineage,
            artifacts_uri=artifacts_uri,
            created_at=package["CreationTime"],
            plots=plots,
            model_card_uri=card,
            status_reason=package.get("ApprovalDescription") or None,
            registered_by=meta.get(REGISTERED_BY) or None,
        )

    # -- pieces ---------------------------------------------------------------------------------------
    def _report(self, package: Mapping[str, Any], arn: str) -> tuple[str, Mapping[str, Any]]:
        try:
            uri = str(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
        except (KeyError, TypeError):
            raise UnreadableVersionError(
                f"model package {arn}: no metrics (ModelMetrics.ModelQuality.Statistics is missing)"
            ) from None
        return uri, self._json(uri, arn, "metrics report")

    def _json(self, uri: str, arn: str, what: str) -> Mapping[str, Any]:
        try:
            doc = json.loads(self._store.get_bytes(uri))
        except (ObjectStoreError, ClientError):
            raise UnreadableVersionError(f"model package {arn}: its {what} cannot be read ({uri})") from None
        except (ValueError, UnicodeDecodeError):
            raise UnreadableVersionError(f"model package {arn}: its {what} is not JSON ({uri})") from None
        if not isinstance(doc, dict):
            raise UnreadableVersionError(f"model package {arn}: its {what} is not a JSON object ({uri})")
        return doc

    def _features_document(self, archive_uri: str, arn: str) -> Mapping[str, Any]:
        """The archive's `features.json` (empty when the training script wrote none)."""
        if archive_uri not in self._archive_docs:
            try:
                data = self._store.get_bytes(archive_uri)
            except (ObjectStoreError, ClientError):
                raise UnreadableVersionError(
                    f"model package {arn}: its model archive cannot be read ({archive_uri})"
                ) from None
            self._archive_docs[archive_uri] = _features_in_archive(data)
        return self._archive_docs[archive_uri]


def metrics_report(metrics: Mapping[str, float]) -> dict[str, Any]:
    """The metrics report this adapter writes: the pipeline's `evaluation.json` shape."""
    return {"metrics": {name: {"value": value} for name, value in metrics.items()}}


def _metric_values(report: Mapping[str, Any], arn: str) -> dict[str, float]:
    metrics = report.get("metrics")
    if not isinstance(metrics, dict):
        raise UnreadableVersionError(f"model package {arn}: its metrics report has no 'metrics' object")
    out: dict[str, float] = {}
    for name, entry in metrics.items():
        value = entry.get("value") if isinstance(entry, dict) else entry  # {"value": x}, or x (older)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UnreadableVersionError(f"model package {arn}: metric {name!r} is not a finite number")
        out[str(name)] = float(value)
    return out


def _pipeline_lineage(package: Mapping[str, Any], document: Mapping[str, Any]) -> Lineage:
    meta = package.get("CustomerMetadataProperties") or {}
    metadata = package.get("MetadataProperties") or {}
    features = document.get("features")
    return Lineage(
        data_snapshot_hash=str(meta.get("data_snapshot_hash") or ""),
        features=tuple(str(f) for f in features) if isinstance(features, list) else (),
        code_version=str(meta.get("code_version") or metadata.get("CommitId") or ""),
        pipeline_run_id=str(meta.get("pipeline_run_id") or metadata.get("GeneratedBy") or ""),
    )


def _model_data_url(package: Mapping[str, Any], arn: str) -> str:
    try:
        return str(package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    except (KeyError, IndexError, TypeError):
        raise UnreadableVersionError(
            f"model package {arn}: no model location (InferenceSpecification ModelDataUrl is missing)"
        ) from None


def _report_files(report: Mapping[str, Any], report_uri: str) -> tuple[dict[str, str], str | None]:
    """The plots and model card an evaluation report names, as URIs beside the report."""
    base = report_uri.rsplit("/", 1)[0]
    plots = report.get("plots") if isinstance(report.get("plots"), dict) else {}
    out = {str(k): f"{base}/{v}" for k, v in plots.items() if _plain_file_name(v)}
    card = report.get("model_card")
    return out, f"{base}/{card}" if _plain_file_name(card) else None


def _plain_file_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and "/" not in name and name not in (".", "..")


def _features_in_archive(data: bytes) -> Mapping[str, Any]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.removeprefix("./") == FEATURES_FILE:
                    if member.size > _MAX_FEATURES_FILE:
                        return {}
                    handle = tar.extractfile(member)
                    doc = json.loads(handle.read()) if handle is not None else {}
                    return doc if isinstance(doc, dict) else {}
    except (tarfile.TarError, ValueError, UnicodeDecodeError, EOFError, OSError):
        return {}
    return {}
