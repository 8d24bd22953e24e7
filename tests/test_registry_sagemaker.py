"""The SageMaker adapter's own promises, checked on the (moto) SageMaker and S3 APIs themselves."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws
from rich.console import Console

from cdp.objectstore.s3 import S3ObjectStore
from cdp.registry import APPROVED, PENDING, Lineage, RegistryError, UnreadableVersionError
from cdp.registry.commands import models_table
from cdp.registry.model_dir import pack
from cdp.registry.sagemaker_registry import CHAMPION_TAG, SageMakerModelRegistry
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.errors import AccessDenied
from cdp.settings import Settings
from tests.contract.test_registry_contract import (
    AWS_ENV,
    BUCKET,
    FEATURES,
    REGION,
    booster_probabilities,
    lineage,
    register,
    training_frame,
    write_tiny_model,
)

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield


def test_packages_carry_status_metrics_lineage_and_artifacts(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    sm = boto3.client("sagemaker", region_name=REGION)
    registry = SageMakerModelRegistry(
        sm,
        S3ObjectStore(s3),
        SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate()),
        BUCKET,
        inference_image_uri=IMAGE,
    )
    model_dir = write_tiny_model(tmp_path / "model")
    register(registry, "fraud", model_dir)
    register(registry, "fraud", model_dir)
    registry.approve("fraud", 2, "alice", "meets gates")

    packages = sm.list_model_packages(ModelPackageGroupName="fraud")["ModelPackageSummaryList"]
    assert sorted((p["ModelPackageVersion"], p["ModelApprovalStatus"]) for p in packages) == [
        (1, "PendingManualApproval"),
        (2, "Approved"),
    ]
    arn = next(p["ModelPackageArn"] for p in packages if p["ModelPackageVersion"] == 2)
    package = sm.describe_model_package(ModelPackageName=arn)
    assert package["ApprovalDescription"] == "meets gates"
    meta = package["CustomerMetadataProperties"]
    assert meta["data_snapshot_hash"].startswith("sha256:") and meta["pipeline_run_id"] == "run-1"
    assert meta["code_version"] == "3f2c1e0" and meta["feature_count"] == str(len(FEATURES))

    metrics_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, key = metrics_uri.removeprefix("s3://").split("/", 1)
    metrics = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    # the pipeline's evaluation.json shape, so one reader serves both producers
    assert metrics == {"metrics": {"pr_auc": {"value": 0.41}, "recall_at_budget": {"value": 0.63}}}
    assert package["MetadataProperties"] == {"GeneratedBy": "run-1", "CommitId": "3f2c1e0"}

    container = package["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == IMAGE and container["ModelDataUrl"] == meta["artifacts_uri"]
    bucket, key = container["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as tar:
        assert sorted(tar.getnames()) == ["model.ubj", "threshold.txt"]

    group_arn = sm.describe_model_package_group(ModelPackageGroupName="fraud")["ModelPackageGroupArn"]
    tags = sm.list_tags(ResourceArn=group_arn)["Tags"]
    assert [t["Value"] for t in tags if t["Key"] == CHAMPION_TAG][-1] == "2"


def test_without_an_image_no_inference_specification(aws: None, tmp_path: Path) -> None:
    sm = boto3.client("sagemaker", region_name=REGION)
    store = S3ObjectStore(boto3.client("s3", region_name=REGION))
    registry = SageMakerModelRegistry(
        sm, store, SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate()), BUCKET
    )
    version = register(registry, "clv", write_tiny_model(tmp_path / "model"))
    package = sm.describe_model_package(
        ModelPackageName=sm.list_model_packages(ModelPackageGroupName="clv")["ModelPackageSummaryList"][0][
            "ModelPackageArn"
        ]
    )
    assert "InferenceSpecification" not in package
    assert version.artifacts_uri.startswith(f"s3://{BUCKET}/model-registry/clv/")


def test_from_settings_builds_clients_for_the_region_and_lake_bucket(aws: None, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", backend="aws", aws_region=REGION, lake_bucket=BUCKET)
    registry = SageMakerModelRegistry.from_settings(
        settings, SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate())
    )
    assert registry.bucket == BUCKET
    assert registry.list() == []
    version = register(registry, "fraud", write_tiny_model(tmp_path / "model"))
    assert version.version == 1 and registry.get("fraud", 1).lineage.features == FEATURES


# -- packages this adapter did not register --------------------------------------------------------------
EXECUTION_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/cdp-fraud/execution/abc123def456"


def _registry(tmp_path: Path) -> tuple[SageMakerModelRegistry, Any, S3ObjectStore]:
    sm = boto3.client("sagemaker", region_name=REGION)
    store = S3ObjectStore(boto3.client("s3", region_name=REGION))
    audit = SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate())
    return SageMakerModelRegistry(sm, store, audit, BUCKET), sm, store


def _pipeline_outputs(store: S3ObjectStore, tmp_path: Path, run: str) -> tuple[str, str]:
    """What the Train and Evaluate steps leave in S3: model.tar.gz (the booster + features.json) and the
    evaluation folder (evaluation.json, a plot, the model card)."""
    model_dir = write_tiny_model(tmp_path / f"model-{run}")
    document = {"features": list(FEATURES), "label": "is_fraud", "hyperparameters": {"max_depth": 2}}
    (model_dir / "features.json").write_text(json.dumps(document))
    (model_dir / "threshold.txt").unlink()
    model_uri = f"s3://{BUCKET}/pipelines/fraud/models/cdp-fraud-train-{run}/output/model.tar.gz"
    store.put_bytes(model_uri, pack(model_dir))
    evaluation = f"s3://{BUCKET}/pipelines/fraud/{run}/evaluation"
    report = {
        "metrics": {"pr_auc": {"value": 0.52}, "recall_at_budget": {"value": 0.71}},
        "plots": {"pr_curve": "pr_curve.png"},
        "model_card": "model_card.md",
    }
    store.put_bytes(f"{evaluation}/evaluation.json", json.dumps(report).encode())
    return model_uri, f"{evaluation}/evaluation.json"


def _register_like_the_pipeline(
    sm: Any, group: str, model_uri: str, report_uri: str | None, **extra: Any
) -> str:
    """CreateModelPackage with the fields the definition's RegisterModel step sends (tests/golden)."""
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Environment": {
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                        "SAGEMAKER_PROGRAM": "",
                        "SAGEMAKER_REGION": REGION,
                        "SAGEMAKER_SUBMIT_DIRECTORY": "",
                    },  # fmt: skip
                    "Image": IMAGE,
                    "ModelDataUrl": model_uri,
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"],
        },
        "ModelApprovalStatus": "PendingManualApproval",
        "MetadataProperties": {"GeneratedBy": EXECUTION_ARN},
        **extra,
    }
    if report_uri is not None:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": report_uri}}
        }
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass  # the group exists
    return str(sm.create_model_package(**request)["ModelPackageArn"])


def test_a_package_registered_by_the_pipeline_step_is_read_approved_and_loaded(
    aws: None, tmp_path: Path
) -> None:
    registry, sm, store = _registry(tmp_path)
    model_uri, report_uri = _pipeline_outputs(store, tmp_path, "run-a")
    _register_like_the_pipeline(
        sm, "cdp-fraud", model_uri, report_uri, CustomerMetadataProperties={"data_snapshot_hash": "sha256:ab"}
    )
    version = registry.get("cdp-fraud", 1)
    assert (version.status, version.is_champion, version.registered_by) == (PENDING, False, None)
    assert version.metrics == {"pr_auc": 0.52, "recall_at_budget": 0.71}
    assert version.artifacts_uri == model_uri
    assert version.lineage == Lineage("sha256:ab", FEATURES, "", EXECUTION_ARN)
    assert version.params == {"max_depth": "2"}
    base = report_uri.rsplit("/", 1)[0]
    assert version.plots == {"pr_curve": f"{base}/pr_curve.png"}
    assert version.model_card_uri == f"{base}/model_card.md"
    assert [(v.version, v.problem) for v in registry.list("cdp-fraud")] == [(1, None)]

    approved = registry.approve("cdp-fraud", 1, "approver-1", "reviewed")
    assert (approved.status, approved.is_champion) == (APPROVED, True)
    assert registry.get("cdp-fraud", 1).lineage.pipeline_run_id == EXECUTION_ARN  # metadata kept
    frame, _ = training_frame(rows=20, seed=8)
    np.testing.assert_allclose(
        registry.load_model("cdp-fraud").predict_proba(frame),
        booster_probabilities(tmp_path / "model-run-a", frame),
        rtol=1e-6,
    )


def test_a_package_registered_before_this_reader_is_still_read(aws: None, tmp_path: Path) -> None:
    """The shape the adapter wrote before: flat metrics report, no MetadataProperties."""
    registry, sm, store = _registry(tmp_path)
    base = f"s3://{BUCKET}/model-registry/fraud/0123456789abcdef"
    store.put_bytes(f"{base}/model.tar.gz", pack(write_tiny_model(tmp_path / "model")))
    store.put_bytes(f"{base}/metrics.json", json.dumps({"metrics": {"pr_auc": 0.41}}).encode())
    registration = {
        "params": {"eta": "0.3"},
        "lineage": lineage().to_dict(),
        "plots": {},
        "model_card_uri": None,
    }
    store.put_bytes(f"{base}/registration.json", json.dumps(registration).encode())
    sm.create_model_package_group(ModelPackageGroupName="fraud")
    sm.create_model_package(
        ModelPackageGroupName="fraud",
        ModelPackageDescription="fraud from pipeline run run-1",
        ModelApprovalStatus="Approved",
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"{base}/metrics.json"}
            }
        },
        CustomerMetadataProperties={
            "data_snapshot_hash": lineage().data_snapshot_hash,
            "code_version": "3f2c1e0",
            "pipeline_run_id": "run-1",
            "registered_by": "ml-pipeline",
            "feature_count": str(len(FEATURES)),
            "artifacts_uri": f"{base}/model.tar.gz",
            "registration_uri": f"{base}/registration.json",
        },  # fmt: skip
    )
    version = registry.get("fraud", 1)
    assert (version.status, version.metrics, version.params) == (APPROVED, {"pr_auc": 0.41}, {"eta": "0.3"})
    assert version.lineage == lineage() and version.registered_by == "ml-pipeline"
    assert version.artifacts_uri == f"{base}/model.tar.gz"
    with pytest.raises(AccessDenied):  # separation of duties still reads the old registrant
        registry.approve("fraud", 1, "ml-pipeline", "mine")


def test_a_package_without_readable_metrics_is_named_and_still_listed(aws: None, tmp_path: Path) -> None:
    registry, sm, store = _registry(tmp_path)
    model_uri, report_uri = _pipeline_outputs(store, tmp_path, "run-b")
    _register_like_the_pipeline(sm, "cdp-fraud", model_uri, report_uri)
    no_metrics = _register_like_the_pipeline(sm, "cdp-fraud", model_uri, None)
    report_gone = _register_like_the_pipeline(
        sm, "cdp-fraud", model_uri, report_uri.replace("run-b", "run-x")
    )
    store.put_bytes(f"s3://{BUCKET}/bad/evaluation.json", b"not json")
    not_json = _register_like_the_pipeline(sm, "cdp-fraud", model_uri, f"s3://{BUCKET}/bad/evaluation.json")

    for version, arn, problem in (
        (2, no_metrics, "no metrics"),
        (3, report_gone, "cannot be read"),
        (4, not_json, "not JSON"),
    ):
        with pytest.raises(UnreadableVersionError) as caught:
            registry.get("cdp-fraud", version)
        message = str(caught.value)
        assert arn in message and problem in message and "\n" not in message
        assert isinstance(caught.value, RegistryError) and not isinstance(caught.value, KeyError)

    listed = registry.list("cdp-fraud")
    assert [(v.version, v.problem is None) for v in listed] == [(1, True), (2, False), (3, False), (4, False)]
    assert listed[1].status == PENDING and no_metrics in (listed[1].problem or "")
    assert listed[1].to_dict()["problem"] == listed[1].problem and "problem" not in listed[0].to_dict()
    console = Console(width=400, record=True)
    console.print(models_table(listed))
    rows = [line for line in console.export_text().splitlines() if "cdp-fraud" in line]
    assert "unreadable" not in rows[0] and "pr_auc=0.52" in rows[0]
    assert all("(unreadable)" in row for row in rows[1:])
