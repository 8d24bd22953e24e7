"""AWS adapter of the model-registry port: SageMaker model package groups, artifacts in S3.

One model = one model package group; one version = one model package (SageMaker numbers them 1, 2...).
- approval status: the package's `ModelApprovalStatus`; the decision's reason is its `ApprovalDescription`;
- metrics: a JSON report in S3 referenced by `ModelMetrics.ModelQuality.Statistics`, in the shape of the
  pipeline's `evaluation.json` (`{"metrics": {name: {"value": x}}}`);
- lineage: scalar fields in `CustomerMetadataProperties` (values are capped at 256 characters by
  SageMaker, so the feature list, params and plot locations live in `registration.json` beside it), the
  run and commit also in `MetadataProperties` (`GeneratedBy`, `CommitId`) as a pipeline would set them.
  Packages registered by a pipeline's RegisterModel step are read too (`cdp.registry.sagemaker_packages`);
- retirement: `ModelApprovalStatus` Rejected (nothing deploys it, SageMaker's own consoles and rules see
  it as not approved) plus the `CustomerMetadataProperties` key `cdp:retired` (when): this adapter reads
  such a package as `Retired`. Metadata rather than a package tag: `DescribeModelPackage` returns it, so
  reading a status costs no extra call;
- champion: the group tag `cdp-champion` holding the version. A tag rather than "the latest Approved
  package" so that approving an older version (a rollback) makes it the champion, as locally;
- artifacts: `s3://<bucket>/<prefix>/<model>/<registration id>/` with `model.tar.gz` (the model folder,
  SageMaker's layout), `metrics.json`, `registration.json`, `plots/` and `model_card.md`, written through
  the object-store port before the package is created;
- challenger: the group tag `cdp-challenger` holding the version scored in shadow (removed when that
  version is approved or rejected); evidence documents (`challenger`, `shadow`, `approval`): one JSON
  object per kind under `s3://<bucket>/<prefix>/<model>/evidence/v<version>/<kind>.json`;
- champion history: one JSON object per change under `s3://<bucket>/<prefix>/<model>/champion-history/`,
  named `<microseconds since epoch>-<random>.json`, only ever created (never rewritten or deleted; an S3
  Object Lock retention on that prefix makes it immutable). Group tags could not hold it: at most 50 tags
  of 256 characters, and `AddTags` overwrites.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from cdp.aws_resources import MODEL_REGISTRY_PREFIX
from cdp.registry import history as champions
from cdp.registry.audit import (
    APPROVE_ACTION,
    REJECT_ACTION,
    RETIRE_ACTION,
    ROLLBACK_ACTION,
    AuditSource,
    LazyAudit,
    audited_decision,
)
from cdp.registry.checks import check_card, check_registration
from cdp.registry.evidence import CHALLENGER_ACTION, decode_evidence, encode_evidence
from cdp.registry.model_card import revision_key
from cdp.registry.model_dir import pack, unpack
from cdp.registry.port import (
    APPROVED,
    CHAMPION,
    PENDING,
    REJECTED,
    RETIRED,
    ApprovalStatus,
    ChampionEvent,
    InvalidRegistrationError,
    Lineage,
    ModelVersion,
    ModelVersionNotFoundError,
    NoPreviousChampionError,
    UnreadableVersionError,
    champion_retire_refusal,
    retired_refusal,
    validate_model_name,
)
from cdp.registry.sagemaker_packages import (
    REGISTERED_BY,
    RETIRED_KEY,
    PackageReader,
    metrics_report,
    package_status,
)
from cdp.registry.scoring import BoosterModel, check_lineage_features, load_scoring_model
from cdp.registry.sources import local_model_dir

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore
    from cdp.registry.centroid import CentroidModel
    from cdp.security.audit.port import AuditLog
    from cdp.settings import Settings

CHAMPION_TAG = "cdp-champion"
CHALLENGER_TAG = "cdp-challenger"
EVIDENCE_FOLDER = "evidence"
HISTORY_FOLDER = "champion-history"
CARDS_FOLDER = "model-cards"  # model-cards/v<version>/<key>.json + .md, one pair per revision
DEFAULT_PREFIX = MODEL_REGISTRY_PREFIX
MAX_METADATA_VALUE = 256  # SageMaker's limit on a CustomerMetadataProperties value
_MISSING_CODES = {"ValidationException", "ResourceNotFound", "ResourceNotFoundException"}


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


class SageMakerModelRegistry:
    """`ModelRegistry` on SageMaker model package groups (`client` is a boto3 SageMaker client)."""

    def __init__(
        self,
        client: Any,
        object_store: ObjectStore,
        audit: AuditSource,
        bucket: str,
        prefix: str = DEFAULT_PREFIX,
        inference_image_uri: str | None = None,
    ) -> None:
        self._sm = client
        self._store = object_store
        self._audit_source = LazyAudit(audit)  # opened by a decision only: reads never touch it
        self._reader = PackageReader(object_store)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.inference_image_uri = inference_image_uri

    @property
    def _audit(self) -> AuditLog:
        return self._audit_source.log

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        audit: AuditSource,
        object_store: ObjectStore | None = None,
        inference_image_uri: str | None = None,
    ) -> SageMakerModelRegistry:
        """The registry in `settings.aws_region`, artifacts under `s3://<lake_bucket>/model-registry/`,
        auditing to `audit` (`Backends.model_registry` passes a function opening the platform audit log)."""
        from cdp.aws_clients import aws_client

        if object_store is None:
            from cdp.objectstore.s3 import S3ObjectStore

            object_store = S3ObjectStore.from_settings(settings)
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "sagemaker")
        bucket = AwsResources.from_settings(settings).lake_bucket
        return cls(client, object_store, audit, bucket, inference_image_uri=inference_image_uri)

    # -- SageMaker plumbing ---------------------------------------------------------------------------
    def _group_arn(self, model_name: str) -> str | None:
        try:
            return str(
                self._sm.describe_model_package_group(ModelPackageGroupName=model_name)[
                    "ModelPackageGroupArn"
                ]
            )
        except ClientError as error:
            if _missing(error):
                return None
            raise

    def _ensure_group(self, model_name: str) -> str:
        arn = self._group_arn(model_name)
        if arn is not None:
            return arn
        try:
            self._sm.create_model_package_group(
                ModelPackageGroupName=model_name, ModelPackageGroupDescription=f"CDP model {model_name}"
            )
        except ClientError:
            if self._group_arn(model_name) is None:  # not a lost creation race: a real failure
                raise
        arn = self._group_arn(model_name)
        assert arn is not None
        return arn

    @staticmethod
    def _package_arn(group_arn: str, version: int) -> str:
        return group_arn.replace(":model-package-group/", ":model-package/", 1) + f"/{int(version)}"

    def _describe_package(self, model_name: str, version: int) -> tuple[dict[str, Any], str]:
        validate_model_name(model_name)
        group_arn = self._group_arn(model_name)
        if group_arn is None:
            raise ModelVersionNotFoundError(f"no model {model_name!r}")
        try:
            package = self._sm.describe_model_package(ModelPackageName=self._package_arn(group_arn, version))
        except ClientError as error:
            if _missing(error):
                raise ModelVersionNotFoundError(f"no version {version} of model {model_name!r}") from None
            raise
        return package, group_arn

    def _set_status(self, package: Mapping[str, Any], status: str, reason: str) -> None:
        # The metadata is sent again unchanged: AWS merges it (a no-op), moto replaces it (and would drop it).
        # A pipeline's package may have none: an empty map is not sent.
        metadata = dict(package.get("CustomerMetadataProperties") or {})
        self._sm.update_model_package(
            ModelPackageArn=package["ModelPackageArn"],
            ModelApprovalStatus=status,
            ApprovalDescription=reason,
            **({"CustomerMetadataProperties": metadata} if metadata else {}),
        )

    def _tags(self, arn: str) -> dict[str, str]:
        """A resource's tags (the last value of a key wins: moto appends where AWS overwrites)."""
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = self._sm.list_tags(**kwargs)
            tags.update({str(t["Key"]): str(t["Value"]) for t in page.get("Tags", [])})
            if not page.get("NextToken"):
                return tags
            kwargs["NextToken"] = page["NextToken"]

    def _champion_number(self, group_arn: str, tag: str = CHAMPION_TAG) -> int | None:
        value = self._tags(group_arn).get(tag)
        return int(value) if value else None

    def _describe(
        self, package: Mapping[str, Any], champion: int | None, challenger: int | None = None
    ) -> ModelVersion:
        described = self._reader.describe(package, champion)
        if challenger is not None and described.version == challenger:
            return dataclasses.replace(described, is_challenger=True)
        return described

    def _marked(self, package: Mapping[str, Any], group_arn: str) -> ModelVersion:
        """The package described with its champion and challenger marks (one tag listing)."""
        tags = self._tags(group_arn)
        champion, challenger = tags.get(CHAMPION_TAG), tags.get(CHALLENGER_TAG)
        return self._describe(
            package, int(champion) if champion else None, int(challenger) if challenger else None
        )

    def _drop_challenger_of(self, group_arn: str, version: int) -> None:
        if self._champion_number(group_arn, CHALLENGER_TAG) == int(version):
            self._sm.delete_tags(ResourceArn=group_arn, TagKeys=[CHALLENGER_TAG])

    def _describe_or_flag(self, package: Mapping[str, Any], champion: int | None) -> ModelVersion:
        """For `list`: an unreadable package is listed with its status and the problem, not skipped
        (hiding a registered version, possibly the champion, would misreport what the registry holds)."""
        try:
            return self._describe(package, champion)
        except UnreadableVersionError as error:
            version = int(package["ModelPackageVersion"])
            container = ((package.get("InferenceSpecification") or {}).get("Containers") or [{}])[0]
            return ModelVersion(
                model_name=str(package["ModelPackageGroupName"]),
                version=version,
                status=package_status(package),
                is_champion=champion == version,
                metrics={},
                params={},
                lineage=Lineage("", (), "", ""),
                artifacts_uri=str(container.get("ModelDataUrl") or ""),
                created_at=package["CreationTime"],
                status_reason=package.get("ApprovalDescription") or None,
                problem=str(error),
            )

    def _versions(self, model_name: str) -> Iterator[int]:
        kwargs: dict[str, Any] = {"ModelPackageGroupName": model_name, "ModelPackageType": "Versioned"}
        while True:
            page = self._sm.list_model_packages(**kwargs)
            for summary in page.get("ModelPackageSummaryList", []):
                yield int(summary["ModelPackageVersion"])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def _model_names(self) -> Iterator[str]:
        kwargs: dict[str, Any] = {}
        while True:
            page = self._sm.list_model_package_groups(**kwargs)
            for summary in page.get("ModelPackageGroupSummaryList", []):
                yield str(summary["ModelPackageGroupName"])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    # -- the port -------------------------------------------------------------------------------------
    def register(
        self,
        model_name: str,
        artifacts_uri: str | Path,
        metrics: Mapping[str, float],
        params: Mapping[str, Any],
        lineage: Lineage,
        approval_status: ApprovalStatus = PENDING,
        plots: Mapping[str, str | Path] | None = None,
        model_card: str | None = None,
        registered_by: str | None = None,
    ) -> ModelVersion:
        checked = check_registration(model_name, approval_status, metrics, params, lineage, plots, model_card)
        metric_values, param_values, plot_files = checked.metrics, checked.params, checked.plots
        scalars = {
            "data_snapshot_hash": lineage.data_snapshot_hash,
            "code_version": lineage.code_version,
            "pipeline_run_id": lineage.pipeline_run_id,
            **({REGISTERED_BY: registered_by} if registered_by else {}),
        }
        if any(len(v) > MAX_METADATA_VALUE for v in scalars.values()):
            raise InvalidRegistrationError(
                f"lineage values and registered_by are limited to {MAX_METADATA_VALUE} characters"
            )

        base = f"s3://{self.bucket}/{self.prefix}/{model_name}/{uuid.uuid4().hex}"
        with local_model_dir(artifacts_uri, self._store) as model_dir:
            check_lineage_features(model_dir, lineage)
            archive_uri = f"{base}/model.tar.gz"
            self._store.put_bytes(archive_uri, pack(model_dir))
        plot_uris: dict[str, str] = {}
        for name, path in plot_files.items():
            plot_uris[name] = f"{base}/plots/{name}{path.suffix.lower()}"
            self._store.put_file(plot_uris[name], path)
        card_uri = None
        if model_card is not None:
            card_uri = f"{base}/model_card.md"
            self._store.put_bytes(card_uri, model_card.encode("utf-8"))
        metrics_uri = f"{base}/metrics.json"
        self._store.put_bytes(metrics_uri, _json(metrics_report(metric_values)))
        registration_uri = f"{base}/registration.json"
        registration = {
            "params": param_values,
            "lineage": lineage.to_dict(),
            "plots": plot_uris,
            "model_card_uri": card_uri,
        }
        self._store.put_bytes(registration_uri, _json(registration))

        self._ensure_group(model_name)
        request: dict[str, Any] = {
            "ModelPackageGroupName": model_name,
            "ModelPackageDescription": f"{model_name} from pipeline run {lineage.pipeline_run_id}"[:1024],
            "ModelApprovalStatus": approval_status,
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": metrics_uri}}
            },
            "MetadataProperties": {
                "GeneratedBy": lineage.pipeline_run_id[:1024],
                "CommitId": lineage.code_version[:1024],
            },
            "CustomerMetadataProperties": {
                **scalars,
                "feature_count": str(len(lineage.features)),
                "artifacts_uri": archive_uri,
                "registration_uri": registration_uri,
            },
        }
        if self.inference_image_uri:
            request["InferenceSpecification"] = {
                "Containers": [{"Image": self.inference_image_uri, "ModelDataUrl": archive_uri}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            }
        arn = self._sm.create_model_package(**request)["ModelPackageArn"]
        package = self._sm.describe_model_package(ModelPackageName=arn)
        return self._describe(package, self._champion_number(self._ensure_group(model_name)))

    def get(self, model_name: str, version: int) -> ModelVersion:
        package, group_arn = self._describe_package(model_name, version)
        return self._marked(package, group_arn)

    def list(self, model_name: str | None = None) -> list[ModelVersion]:
        if model_name is not None:
            validate_model_name(model_name)
            names = [model_name] if self._group_arn(model_name) else []
        else:
            names = sorted(self._model_names())
        out: list[ModelVersion] = []
        for name in names:
            group_arn = self._group_arn(name)
            if group_arn is None:
                continue
            champion = self._champion_number(group_arn)
            challenger = self._champion_number(group_arn, CHALLENGER_TAG)
            for version in sorted(self._versions(name)):
                package = self._sm.describe_model_package(
                    ModelPackageName=self._package_arn(group_arn, version)
                )
                described = self._describe_or_flag(package, champion)
                if described.version == challenger:
                    described = dataclasses.replace(described, is_challenger=True)
                out.append(described)
        return out

    def champion(self, model_name: str) -> ModelVersion | None:
        validate_model_name(model_name)
        group_arn = self._group_arn(model_name)
        number = None if group_arn is None else self._champion_number(group_arn)
        return None if number is None else self.get(model_name, number)

    def champion_version(self, model_name: str) -> int | None:
        validate_model_name(model_name)
        group_arn = self._group_arn(model_name)
        return None if group_arn is None else self._champion_number(group_arn)

    def approve(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        return self._approve(model_name, version, actor, reason, role, APPROVE_ACTION)

    def _approve(
        self, model_name: str, version: int, actor: str, reason: str, role: str, action: str
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            package, group_arn = self._describe_package(model_name, version)
            if package_status(package) == RETIRED:
                raise retired_refusal(model_name, version)
            before = self._champion_number(group_arn)
            self._set_status(package, APPROVED, reason)
            # the status is set before the tag moves, so the champion is always an Approved version
            self._sm.add_tags(ResourceArn=group_arn, Tags=[{"Key": CHAMPION_TAG, "Value": str(int(version))}])
            self._drop_challenger_of(group_arn, int(version))
            if before != int(version):
                kind = champions.ROLLBACK if action == ROLLBACK_ACTION else champions.APPROVE
                self._record(champions.new_change(model_name, actor, kind, reason, before, int(version)))
            return self.get(model_name, version)

        def registrant() -> str | None:
            package, _ = self._describe_package(model_name, version)
            return (package.get("CustomerMetadataProperties") or {}).get(REGISTERED_BY) or None

        current = self.champion_version(model_name) if action == ROLLBACK_ACTION else None
        return audited_decision(
            self._audit, action=action, actor=actor, role=role, model_name=model_name, version=version,
            reason=reason, decide=decide, registrant=registrant,
            extra={"rolled_back_from": current} if action == ROLLBACK_ACTION else None,
        )  # fmt: skip

    def reject(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            package, group_arn = self._describe_package(model_name, version)
            if self._champion_number(group_arn) == int(version):
                self._sm.delete_tags(ResourceArn=group_arn, TagKeys=[CHAMPION_TAG])
                self._record(
                    champions.new_change(model_name, actor, champions.REJECT, reason, int(version), None)
                )
            self._drop_challenger_of(group_arn, int(version))
            self._set_status(package, REJECTED, reason)
            return self.get(model_name, version)

        return audited_decision(
            self._audit, action=REJECT_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide,
        )  # fmt: skip

    def retire(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            package, group_arn = self._describe_package(model_name, version)
            if package_status(package) == RETIRED:
                raise retired_refusal(model_name, version)
            if self._champion_number(group_arn) == int(version):
                raise champion_retire_refusal(model_name, version)
            self._drop_challenger_of(group_arn, int(version))
            when = datetime.now(UTC).isoformat(timespec="seconds")
            metadata = {**(package.get("CustomerMetadataProperties") or {}), RETIRED_KEY: when}
            self._sm.update_model_package(
                ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus=REJECTED,
                ApprovalDescription=reason, CustomerMetadataProperties=metadata,
            )  # fmt: skip
            return self.get(model_name, version)

        def registrant() -> str | None:
            package, _ = self._describe_package(model_name, version)
            return (package.get("CustomerMetadataProperties") or {}).get(REGISTERED_BY) or None

        return audited_decision(
            self._audit, action=RETIRE_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide, registrant=registrant,
        )  # fmt: skip

    # -- challenger and evidence ----------------------------------------------------------------------
    def set_challenger(
        self, model_name: str, version: int, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        def decide() -> ModelVersion:
            package, group_arn = self._describe_package(model_name, version)
            status = package_status(package)
            if status == RETIRED:
                raise retired_refusal(model_name, version)
            if status != PENDING:
                raise InvalidRegistrationError(
                    f"v{int(version)} is {status}: only a pending version challenges"
                )
            tag = {"Key": CHALLENGER_TAG, "Value": str(int(version))}
            self._sm.delete_tags(ResourceArn=group_arn, TagKeys=[CHALLENGER_TAG])  # moto appends on add
            self._sm.add_tags(ResourceArn=group_arn, Tags=[tag])
            return self.get(model_name, version)

        return audited_decision(
            self._audit, action=CHALLENGER_ACTION, actor=actor, role=role, model_name=model_name,
            version=version, reason=reason, decide=decide,
        )  # fmt: skip

    def challenger(self, model_name: str) -> ModelVersion | None:
        number = self.challenger_version(model_name)
        return None if number is None else self.get(model_name, number)

    def challenger_version(self, model_name: str) -> int | None:
        validate_model_name(model_name)
        group_arn = self._group_arn(model_name)
        return None if group_arn is None else self._champion_number(group_arn, CHALLENGER_TAG)

    def _evidence_prefix(self, model_name: str, version: int) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{model_name}/{EVIDENCE_FOLDER}/v{int(version)}/"

    def record_evidence(self, model_name: str, version: int, kind: str, document: Mapping[str, Any]) -> None:
        text = encode_evidence(kind, document)
        self._describe_package(model_name, version)  # the version must exist
        uri = f"{self._evidence_prefix(model_name, version)}{kind}.json"
        self._store.put_bytes(uri, text.encode("utf-8"))

    def evidence(self, model_name: str, version: int) -> dict[str, dict[str, Any]]:
        validate_model_name(model_name)
        prefix = self._evidence_prefix(model_name, version)
        found = sorted(info.uri for info in self._store.list(prefix))
        return {
            uri[len(prefix) :].removesuffix(".json"): decode_evidence(self._store.get_bytes(uri))
            for uri in found
            if uri.endswith(".json")
        }

    # -- champion history -----------------------------------------------------------------------------
    def _history_prefix(self, model_name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{model_name}/{HISTORY_FOLDER}/"

    def _record(self, change: champions.ChampionChange) -> None:
        uri = f"{self._history_prefix(change.model_name)}{champions.record_key(change)}.json"
        self._store.put_bytes(uri, change.to_json().encode("utf-8"))

    def _changes(self, model_name: str) -> list[champions.ChampionChange]:
        validate_model_name(model_name)
        found = sorted(info.uri for info in self._store.list(self._history_prefix(model_name)))
        return champions.ordered(
            champions.ChampionChange.from_json(self._store.get_bytes(uri)) for uri in found
        )

    def history(self, model_name: str) -> list[ChampionEvent]:
        return champions.events(self._changes(model_name))

    def champion_at(self, model_name: str, when: datetime) -> int | None:
        return champions.champion_at(self._changes(model_name), when, self.champion_version(model_name))

    def rollback(
        self, model_name: str, actor: str, reason: str, *, role: str = "model-approver"
    ) -> ModelVersion:
        current = self.champion_version(model_name)
        target = champions.previous_champion(
            self._changes(model_name),
            current,
            lambda v: str(self._describe_package(model_name, v)[0]["ModelApprovalStatus"]),
        )
        if target is None:
            raise NoPreviousChampionError(f"model {model_name!r} has no earlier champion to roll back to")
        return self._approve(model_name, target, actor, reason, role, ROLLBACK_ACTION)

    # -- model cards ----------------------------------------------------------------------------------
    def _cards_prefix(self, model_name: str, version: int) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{model_name}/{CARDS_FOLDER}/v{int(version)}/"

    def save_card(self, model_name: str, version: int, card: Mapping[str, Any], markdown: str) -> str:
        body = check_card(model_name, card, markdown)
        self._describe_package(model_name, version)  # ModelVersionNotFoundError for an unknown version
        key = revision_key()
        prefix = self._cards_prefix(model_name, version)
        self._store.put_bytes(f"{prefix}{key}.json", body)
        self._store.put_bytes(f"{prefix}{key}.md", markdown.encode("utf-8"))
        return f"{prefix}{key}.md"

    def load_card(self, model_name: str, version: int) -> dict[str, Any] | None:
        self._describe_package(model_name, version)
        revisions = sorted(
            info.uri for info in self._store.list(self._cards_prefix(model_name, version))
            if info.uri.endswith(".json")
        )  # fmt: skip
        if not revisions:
            return None
        return dict(json.loads(self._store.get_bytes(revisions[-1])))

    def load_model(
        self, model_name: str, version: int | Literal["champion"] = CHAMPION
    ) -> BoosterModel | CentroidModel:
        if version == CHAMPION:
            chosen = self.champion(model_name)
            if chosen is None:
                raise ModelVersionNotFoundError(f"model {model_name!r} has no champion")
        else:
            chosen = self.get(model_name, int(version))
        with tempfile.TemporaryDirectory(prefix="cdp-model-") as tmp:
            model_dir = unpack(self._store.get_bytes(chosen.artifacts_uri), Path(tmp) / "model")
            return load_scoring_model(model_dir)  # the model is in memory; the folder can go


def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
