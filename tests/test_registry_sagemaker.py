"""The SageMaker adapter's own promises, checked on the (moto) SageMaker and S3 APIs themselves."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.objectstore.s3 import S3ObjectStore
from cdp.registry.sagemaker_registry import CHAMPION_TAG, SageMakerModelRegistry
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.settings import Settings
from tests.test_registry_contract import AWS_ENV, BUCKET, FEATURES, REGION, register, write_tiny_model

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
