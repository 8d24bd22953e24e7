"""The deploy step (`python -m monitoring.deploy`) on moto: an approved package becomes a tagged model, an
endpoint configuration with the platform key and the endpoint named after the model; a retry changes
nothing; what must not deploy is refused in one line.

moto does not implement `UpdateEndpoint`, so updating an existing endpoint to a new version is checked with
botocore's Stubber on the same calls.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from monitoring.deploy import (
    DEFAULT_INSTANCE_TYPE,
    DeployError,
    DeployRequest,
    EndpointAutoscaler,
    EndpointDeployer,
    main,
    parse_package_arn,
    resource_name,
)
from tests.contract.moto_env import REGION, use_fake_aws_credentials

ROLE = "arn:aws:iam::123456789012:role/cdp-sagemaker-execution"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdp-inference:1"
ENDPOINT_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/cdp-fraud"


@pytest.fixture
def sm(monkeypatch):
    use_fake_aws_credentials(monkeypatch)
    monkeypatch.delenv("CDP_AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


def _package(sm, status: str = "Approved", image: str | None = IMAGE, group: str = "cdp-fraud") -> str:
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass
    request: dict[str, Any] = {"ModelPackageGroupName": group, "ModelApprovalStatus": status}
    if image is not None:
        request["InferenceSpecification"] = {
            "Containers": [
                {
                    "Image": image,
                    "ModelDataUrl": "s3://cdp-lake/pipelines/fraud/models/job/output/model.tar.gz",
                    "Environment": {"CDP_MODEL_NAME": group},
                }
            ],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        }
    return sm.create_model_package(**request)["ModelPackageArn"]


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def test_an_approved_package_gets_its_model_config_and_endpoint(sm):
    arn = _package(sm)
    deployment = EndpointDeployer(sm).deploy(DeployRequest(arn, ROLE, KEY))
    assert (deployment.endpoint_name, deployment.model_version, deployment.action) == (
        "cdp-fraud",
        1,
        "created",
    )

    model = sm.describe_model(ModelName=deployment.model_name)
    assert model["ExecutionRoleArn"] == ROLE
    container = model["PrimaryContainer"]
    assert container["ModelPackageName"] == arn
    assert container["Environment"] == {"CDP_MODEL_NAME": "cdp-fraud", "CDP_MODEL_VERSION": "1"}
    config = sm.describe_endpoint_config(EndpointConfigName=deployment.endpoint_config_name)
    assert config["KmsKeyId"] == KEY
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == deployment.model_name
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == (DEFAULT_INSTANCE_TYPE, 1)
    endpoint = sm.describe_endpoint(EndpointName="cdp-fraud")
    assert endpoint["EndpointConfigName"] == deployment.endpoint_config_name
    expected_tags = {"cdp:model": "cdp-fraud", "cdp:model-version": "1", "cdp:model-package": arn}
    for resource in (model["ModelArn"], config["EndpointConfigArn"], endpoint["EndpointArn"]):
        assert _tags(sm, resource) == expected_tags


def test_the_endpoint_config_captures_no_request_or_response_data(sm):
    """The deploy step sends no DataCaptureConfig: requests and responses (transaction features, scores)
    are not copied to S3 by SageMaker. No setting turns capture on; one that does must change this test."""
    from cdp.settings import Settings

    assert not [name for name in Settings.model_fields if "capture" in name]
    sent: list[dict[str, Any]] = []
    sm.meta.events.register(
        "provide-client-params.sagemaker.CreateEndpointConfig", lambda params, **_: sent.append(dict(params))
    )
    deployment = EndpointDeployer(sm).deploy(DeployRequest(_package(sm), ROLE, KEY))
    (request,) = sent
    assert request["EndpointConfigName"] == deployment.endpoint_config_name
    assert "DataCaptureConfig" not in request
    config = sm.describe_endpoint_config(EndpointConfigName=deployment.endpoint_config_name)
    assert not config.get("DataCaptureConfig")  # the emulator shows an empty one when none was sent


def test_a_retry_changes_nothing(sm):
    arn = _package(sm)
    deployer = EndpointDeployer(sm)
    first = deployer.deploy(DeployRequest(arn, ROLE, KEY))
    again = deployer.deploy(DeployRequest(arn, ROLE, KEY))
    assert again.action == "unchanged" and again.endpoint_config_name == first.endpoint_config_name
    assert len(sm.list_models()["Models"]) == 1
    assert len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert len(sm.list_endpoints()["Endpoints"]) == 1


def test_names_follow_what_the_resources_are_made_of():
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/12"
    assert parse_package_arn(arn) == ("cdp-fraud", 12)
    base = DeployRequest(arn, ROLE, KEY)
    name = resource_name("cdp-fraud", 12, base)
    assert name.startswith("cdp-fraud-v12-") and name == resource_name("cdp-fraud", 12, base)
    assert name != resource_name("cdp-fraud", 12, DeployRequest(arn, ROLE, KEY, instance_type="ml.c5.xlarge"))
    long_group = "cdp-" + "x" * 59
    assert len(resource_name(long_group, 123456, base)) <= 63


@pytest.mark.parametrize(
    ("status", "image", "message"),
    [
        ("PendingManualApproval", IMAGE, "is PendingManualApproval, not Approved"),
        ("Rejected", IMAGE, "is Rejected, not Approved"),
        ("Approved", None, "names no inference container image"),
    ],
)
def test_what_must_not_deploy_is_refused_and_nothing_is_created(sm, status, image, message):
    arn = _package(sm, status=status, image=image)
    with pytest.raises(DeployError, match=message) as refused:
        EndpointDeployer(sm).deploy(DeployRequest(arn, ROLE, KEY))
    assert arn in str(refused.value) and "\n" not in str(refused.value)
    assert sm.list_models()["Models"] == [] and sm.list_endpoints()["Endpoints"] == []


def test_a_missing_package_and_a_malformed_arn_are_one_line(sm):
    missing = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/9"
    sm.create_model_package_group(ModelPackageGroupName="cdp-fraud")
    with pytest.raises(DeployError, match="does not exist"):
        EndpointDeployer(sm).deploy(DeployRequest(missing, ROLE, KEY))
    with pytest.raises(DeployError, match="not a versioned model package ARN"):
        parse_package_arn("arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/cdp-fraud")


def test_the_command_deploys_with_the_settings_defaults_and_prints_one_line(
    sm, monkeypatch, capsys, tmp_path
):
    monkeypatch.setenv("CDP_HOME", str(tmp_path))
    monkeypatch.setenv("CDP_ENDPOINT_INSTANCE_TYPE", "ml.c5.large")
    from cdp.settings import get_settings

    get_settings.cache_clear()
    arn = _package(sm)
    assert main(["--model-package-arn", arn, "--kms-key", KEY]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("endpoint cdp-fraud created: version 1")
    model = sm.list_models()["Models"][0]["ModelName"]
    described = sm.describe_model(ModelName=model)
    assert described["ExecutionRoleArn"] == ROLE  # the platform's role in the caller's account
    config = sm.describe_endpoint_config(EndpointConfigName=model)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.c5.large"

    pending = _package(sm, status="PendingManualApproval")
    assert main(["--model-package-arn", pending]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"deploy: model package {pending} is Pending")
    get_settings.cache_clear()


def _stubbed_update(status: str) -> tuple[Any, Stubber, str]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/2"
    name = resource_name("cdp-fraud", 2, DeployRequest(arn, ROLE, KEY))
    package = {
        "ModelPackageName": "cdp-fraud", "ModelPackageArn": arn, "ModelApprovalStatus": "Approved",
        "CreationTime": datetime.now(UTC), "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
        "InferenceSpecification": {"Containers": [{"Image": IMAGE}], "SupportedContentTypes": [],
                                   "SupportedResponseMIMETypes": []},
    }  # fmt: skip
    stub.add_response("describe_model_package", package, {"ModelPackageName": arn})
    now = datetime.now(UTC)
    stub.add_response(
        "describe_model",
        {"ModelName": name, "ModelArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{name}",
         "CreationTime": now},
        {"ModelName": name},
    )  # fmt: skip
    stub.add_response(
        "describe_endpoint_config",
        {"EndpointConfigName": name, "ProductionVariants": [{"VariantName": "AllTraffic"}],
         "CreationTime": now, "EndpointConfigArn": f"{ENDPOINT_ARN}-config/{name}"},
        {"EndpointConfigName": name},
    )  # fmt: skip
    endpoint_arn = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/cdp-fraud"
    stub.add_response(
        "describe_endpoint",
        {"EndpointName": "cdp-fraud", "EndpointArn": endpoint_arn, "EndpointConfigName": "cdp-fraud-v1-0",
         "EndpointStatus": status, "CreationTime": now, "LastModifiedTime": now},
        {"EndpointName": "cdp-fraud"},
    )  # fmt: skip
    return client, stub, name


def test_an_endpoint_on_an_older_version_is_updated_and_retagged():
    client, stub, name = _stubbed_update("InService")
    stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": "cdp-fraud",
                                                                   "EndpointConfigName": name})  # fmt: skip
    stub.add_response("add_tags", {}, None)
    with stub:
        deployment = EndpointDeployer(client).deploy(
            DeployRequest("arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/2", ROLE, KEY)
        )
        stub.assert_no_pending_responses()
    assert (deployment.action, deployment.endpoint_config_name, deployment.model_version) == (
        "updated",
        name,
        2,
    )


def test_an_endpoint_still_updating_is_refused_in_one_line():
    client, stub, _ = _stubbed_update("Updating")
    with stub, pytest.raises(DeployError, match="endpoint cdp-fraud is still Updating"):
        EndpointDeployer(client).deploy(
            DeployRequest("arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/2", ROLE, KEY)
        )


# -- autoscaling on invocations ---------------------------------------------------------------------
def _autoscaler(max_instances: int = 4) -> EndpointAutoscaler:
    client = boto3.client("application-autoscaling", region_name=REGION)
    return EndpointAutoscaler(client, max_instances=max_instances, invocations_per_instance=750)


def test_a_deployed_endpoint_scales_on_invocations_per_instance(sm):
    arn = _package(sm)
    autoscaler = _autoscaler()
    deployer = EndpointDeployer(sm, autoscaler=autoscaler)
    deployment = deployer.deploy(DeployRequest(arn, ROLE, KEY, instance_count=2))
    assert deployment.autoscaling == "2-4 instances, target 750 invocations per instance per minute"
    deployer.deploy(DeployRequest(arn, ROLE, KEY, instance_count=2))  # a retry registers nothing twice

    targets = autoscaler.client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    (target,) = targets
    assert target["ResourceId"] == "endpoint/cdp-fraud/variant/AllTraffic"
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    (policy,) = autoscaler.client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert config["TargetValue"] == 750.0
    assert (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert "autoscaling 2-4 instances" in deployment.describe()


def test_a_floor_above_the_ceiling_raises_the_ceiling_and_remove_is_idempotent(sm):
    autoscaler = _autoscaler(max_instances=1)
    assert autoscaler.apply("cdp-fraud", 3).startswith("3-3 instances")
    autoscaler.remove("cdp-fraud")
    autoscaler.remove("cdp-fraud")  # already gone: fine
    assert autoscaler.client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


class _RecordingAutoscaler(EndpointAutoscaler):
    def __init__(self, calls: list[str]) -> None:
        super().__init__(None, max_instances=4, invocations_per_instance=1000)
        self.calls = calls

    def apply(self, endpoint: str, min_instances: int, max_instances: int | None = None) -> str:
        self.calls.append("apply")
        return "applied"

    def remove(self, endpoint: str) -> None:
        self.calls.append("remove")


def test_a_new_instance_type_deregisters_autoscaling_before_the_update():
    client, stub, name = _stubbed_update("InService")
    calls: list[str] = []
    stub.add_response(
        "describe_endpoint_config",
        {"EndpointConfigName": "cdp-fraud-v1-0", "CreationTime": datetime.now(UTC),
         "EndpointConfigArn": f"{ENDPOINT_ARN}-config/cdp-fraud-v1-0",
         "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.c5.large"}]},
        {"EndpointConfigName": "cdp-fraud-v1-0"},
    )  # fmt: skip
    stub.add_response("update_endpoint", {"EndpointArn": ENDPOINT_ARN}, {"EndpointName": "cdp-fraud",
                                                                   "EndpointConfigName": name})  # fmt: skip
    stub.add_response("add_tags", {}, None)
    now = datetime.now(UTC)
    stub.add_response(
        "describe_endpoint",
        {"EndpointName": "cdp-fraud", "EndpointArn": ENDPOINT_ARN, "EndpointConfigName": name,
         "EndpointStatus": "Updating", "CreationTime": now, "LastModifiedTime": now},
        {"EndpointName": "cdp-fraud"},
    )  # fmt: skip
    with stub:
        deployment = EndpointDeployer(client, autoscaler=_RecordingAutoscaler(calls)).deploy(
            DeployRequest("arn:aws:sagemaker:eu-west-1:123456789012:model-package/cdp-fraud/2", ROLE, KEY)
        )
        stub.assert_no_pending_responses()
    assert calls == ["remove"]  # deregistered before the update; not re-registered while it updates
    assert deployment.autoscaling == "pending: the endpoint is Updating; the next deploy registers it"
