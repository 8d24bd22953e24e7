"""Deploy an approved model version to its SageMaker endpoint: the target of the deploy-on-approval rule.

`python -m monitoring.deploy --model-package-arn ARN` (the CodeBuild deploy project runs it with the
package of the approval event):
1. the package must be `Approved` and name an inference container (the pipeline's RegisterModel step
   registers this project's inference image with the training step's `model.tar.gz`);
2. a SageMaker model is created from the package (network isolation on; the container is told the
   registry name and version it serves, which its answers carry), then an endpoint configuration (one
   variant `AllTraffic`, the platform's KMS key on the instance storage);
3. the endpoint named after the model (`cdp-fraud` for the group `cdp-fraud`: the stream handler's
   `CDP_FRAUD_ENDPOINT_NAME`) is created, or updated to the new configuration;
4. autoscaling on invocations (`EndpointAutoscaler`): the variant is registered with Application Auto
   Scaling between `--instance-count` and `CDP_ENDPOINT_MAX_INSTANCES` instances, with a target-tracking
   policy on `SageMakerVariantInvocationsPerInstance` (`CDP_ENDPOINT_INVOCATIONS_PER_INSTANCE` per minute).
   SageMaker accepts a scalable target only on an endpoint in service, so a deploy that does not wait
   (`--wait-seconds`) for a new endpoint says autoscaling is pending and the next deploy registers it.
   An update that changes the variant's instance type deregisters the target first, as SageMaker requires.

Data capture stays off: the endpoint's requests are feature rows (no personal data by construction), but
nothing reads captured traffic; the drift job reads the scored rows the stream handler writes to the lake.

Idempotent: the model and configuration are named `<group>-v<version>-<digest>`, the digest over what
they are made of (package, role, key, instance type and count), so a retried deploy finds them and an
endpoint already on that configuration is left alone. Everything created is tagged with the package it
serves. Errors are one line naming the package.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
VARIANT_NAME = "AllTraffic"
APPROVED = "Approved"
MAX_NAME = 63  # SageMaker's limit on model and endpoint configuration names
TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
TAG_PACKAGE = "cdp:model-package"
TAG_MODEL = "cdp:model"
TAG_VERSION = "cdp:model-version"
_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[A-Za-z0-9-]{1,63})/(?P<version>\d+)$"
)
_MISSING = re.compile(r"could not find|does not exist|not found", re.IGNORECASE)

Action = Literal["created", "updated", "unchanged"]


class DeployError(Exception):
    """The deploy cannot go on; the message is one line naming the package or endpoint."""


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy and how: the approved package, the role the endpoint runs as, its KMS key and
    instances, and the endpoint's name (default: the package's group)."""

    package_arn: str
    role_arn: str
    kms_key_id: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    endpoint_name: str | None = None
    extra_tags: tuple[tuple[str, str], ...] = ()  # set on everything created, beside the model's own
    max_instance_count: int | None = None  # autoscaling's ceiling (None: the autoscaler's default)


@dataclass(frozen=True)
class Deployment:
    """What the deploy left in place."""

    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    model_version: int
    action: Action
    autoscaling: str = "not configured"

    def describe(self) -> str:
        return (
            f"endpoint {self.endpoint_name} {self.action}: version {self.model_version} "
            f"(model {self.model_name}, config {self.endpoint_config_name}); autoscaling {self.autoscaling}"
        )


SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_METRIC = "SageMakerVariantInvocationsPerInstance"


class EndpointAutoscaler:
    """Target-tracking autoscaling of an endpoint's variant on invocations per instance (`client`: boto3
    Application Auto Scaling). Registering and putting the policy are idempotent."""

    def __init__(
        self,
        client: Any,
        *,
        max_instances: int,
        invocations_per_instance: float,
        scale_in_cooldown: int = 300,
        scale_out_cooldown: int = 60,
    ) -> None:
        self.client = client
        self.max_instances = max_instances
        self.invocations_per_instance = invocations_per_instance
        self.scale_in_cooldown = scale_in_cooldown
        self.scale_out_cooldown = scale_out_cooldown

    @staticmethod
    def resource_id(endpoint: str) -> str:
        return f"endpoint/{endpoint}/variant/{VARIANT_NAME}"

    @staticmethod
    def policy_name(endpoint: str) -> str:
        return f"{endpoint}-invocations-per-instance"

    def apply(self, endpoint: str, min_instances: int, max_instances: int | None = None) -> str:
        """Register the variant between `min_instances` and the ceiling and put the policy; what it set."""
        ceiling = max(min_instances, max_instances or self.max_instances)
        target = {"ServiceNamespace": "sagemaker", "ResourceId": self.resource_id(endpoint),
                  "ScalableDimension": SCALABLE_DIMENSION}  # fmt: skip
        self.client.register_scalable_target(**target, MinCapacity=min_instances, MaxCapacity=ceiling)
        self.client.put_scaling_policy(
            **target,
            PolicyName=self.policy_name(endpoint),
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(self.invocations_per_instance),
                "PredefinedMetricSpecification": {"PredefinedMetricType": INVOCATIONS_METRIC},
                "ScaleInCooldown": self.scale_in_cooldown,
                "ScaleOutCooldown": self.scale_out_cooldown,
            },
        )
        rate = f"{self.invocations_per_instance:g} invocations per instance per minute"
        return f"{min_instances}-{ceiling} instances, target {rate}"

    def remove(self, endpoint: str) -> None:
        """Delete the policy and deregister the variant (what is already gone is fine)."""
        target = {"ServiceNamespace": "sagemaker", "ResourceId": self.resource_id(endpoint),
                  "ScalableDimension": SCALABLE_DIMENSION}  # fmt: skip
        for call, extra in ((self.client.delete_scaling_policy, {"PolicyName": self.policy_name(endpoint)}),
                            (self.client.deregister_scalable_target, {})):  # fmt: skip
            try:
                call(**target, **extra)
            except ClientError as error:
                if not _gone(error):
                    raise


def parse_package_arn(arn: str) -> tuple[str, int]:
    """(group, version) of a versioned model package ARN."""
    match = _PACKAGE_ARN.match(arn.strip())
    if match is None:
        raise DeployError(f"not a versioned model package ARN: {arn[:200]!r}")
    return match["group"], int(match["version"])


def resource_name(group: str, version: int, request: DeployRequest) -> str:
    """`<group>-v<version>-<digest>`: the same inputs give the same name (a retry finds its resources)."""
    made_of = [request.package_arn, request.role_arn, request.kms_key_id, request.instance_type,
               request.instance_count]  # fmt: skip
    digest = hashlib.sha256(json.dumps(made_of).encode()).hexdigest()[:8]
    suffix = f"-v{version}-{digest}"
    return f"{group[: MAX_NAME - len(suffix)]}{suffix}"


class EndpointDeployer:
    """Creates the model, endpoint configuration and endpoint of an approved package (`client`: boto3
    SageMaker). `wait_seconds`: how long to wait for an endpoint that is being created or updated."""

    def __init__(
        self,
        client: Any,
        *,
        wait_seconds: float = 0.0,
        poll_seconds: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
        autoscaler: EndpointAutoscaler | None = None,
    ) -> None:
        self.client = client
        self.autoscaler = autoscaler
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self._sleep = sleep

    def deploy(self, request: DeployRequest) -> Deployment:
        group, version = parse_package_arn(request.package_arn)
        arn = request.package_arn
        package = self._approved_package(arn)
        name = resource_name(group, version, request)
        tags = [
            {"Key": TAG_MODEL, "Value": group},
            {"Key": TAG_VERSION, "Value": str(version)},
            {"Key": TAG_PACKAGE, "Value": arn},
            *({"Key": key, "Value": value} for key, value in request.extra_tags),
        ]
        if not self._exists(self.client.describe_model, ModelName=name):
            self.client.create_model(
                ModelName=name,
                ExecutionRoleArn=request.role_arn,
                PrimaryContainer={
                    "ModelPackageName": arn,
                    # what the container's answers carry (inference/container/environment.py)
                    "Environment": {
                        **_package_environment(package),
                        "CDP_MODEL_NAME": group,
                        "CDP_MODEL_VERSION": str(version),
                    },
                },
                EnableNetworkIsolation=True,
                Tags=tags,
            )
        if not self._exists(self.client.describe_endpoint_config, EndpointConfigName=name):
            self.client.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": VARIANT_NAME,
                        "ModelName": name,
                        "InstanceType": request.instance_type,
                        "InitialInstanceCount": request.instance_count,
                    }
                ],
                KmsKeyId=request.kms_key_id,
                Tags=tags,
            )
        endpoint = request.endpoint_name or group
        action = self._create_or_update(endpoint, name, tags, request.instance_type)
        scaling = self._autoscale(endpoint, request) if self.autoscaler is not None else "not configured"
        return Deployment(endpoint, name, name, version, action, scaling)

    def _autoscale(self, endpoint: str, request: DeployRequest) -> str:
        assert self.autoscaler is not None
        status = self._settled_status(endpoint, self._endpoint(endpoint) or {})
        if status != "InService":
            return f"pending: the endpoint is {status}; the next deploy registers it"
        return self.autoscaler.apply(endpoint, request.instance_count, request.max_instance_count)

    # -- steps ----------------------------------------------------------------------------------------
    def _approved_package(self, arn: str) -> dict[str, Any]:
        try:
            package = self.client.describe_model_package(ModelPackageName=arn)
        except ClientError as error:
            if _missing(error):
                raise DeployError(f"model package {arn} does not exist") from None
            raise
        status = package.get("ModelApprovalStatus")
        if status != APPROVED:
            raise DeployError(
                f"model package {arn} is {status}, not {APPROVED}: only approved versions deploy"
            )
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        if not containers or not containers[0].get("Image"):
            raise DeployError(f"model package {arn} names no inference container image")
        return package

    def _create_or_update(
        self, endpoint: str, config: str, tags: list[dict[str, str]], instance_type: str
    ) -> Action:
        current = self._endpoint(endpoint)
        if current is None:
            self.client.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags)
            return "created"
        if current.get("EndpointConfigName") == config:
            return "unchanged"
        status = self._settled_status(endpoint, current)
        if status == "Failed":
            raise DeployError(f"endpoint {endpoint} is Failed: delete it, then deploy again")
        if status in TRANSITIONAL:
            raise DeployError(f"endpoint {endpoint} is still {status}: deploy again once it is InService")
        if self.autoscaler is not None and self._instance_type(current) != instance_type:
            self.autoscaler.remove(endpoint)  # SageMaker refuses a new instance type on a scaled variant
        self.client.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        self.client.add_tags(ResourceArn=current["EndpointArn"], Tags=tags)  # the version it now serves
        return "updated"

    def _instance_type(self, endpoint: dict[str, Any]) -> str | None:
        config = self.client.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variants = [v for v in config.get("ProductionVariants", []) if v.get("VariantName") == VARIANT_NAME]
        return variants[0].get("InstanceType") if variants else None

    def _settled_status(self, endpoint: str, described: dict[str, Any]) -> str:
        deadline = time.monotonic() + self.wait_seconds
        status = str(described.get("EndpointStatus"))
        while status in TRANSITIONAL and time.monotonic() < deadline:
            self._sleep(self.poll_seconds)
            status = str((self._endpoint(endpoint) or {}).get("EndpointStatus"))
        return status

    def _endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_endpoint(EndpointName=name))
        except ClientError as error:
            if _missing(error):
                return None
            raise

    @staticmethod
    def _exists(describe: Callable[..., Any], **name: str) -> bool:
        try:
            describe(**name)
        except ClientError as error:
            if _missing(error):
                return False
            raise
        return True


def _missing(error: ClientError) -> bool:
    """SageMaker answers a missing model, configuration or endpoint with a ValidationException."""
    detail = error.response.get("Error", {})
    code = str(detail.get("Code", ""))
    return code in {"ResourceNotFound", "ResourceNotFoundException"} or (
        code in {"ValidationException", "ValidationError"}
        and bool(_MISSING.search(str(detail.get("Message"))))
    )


def _gone(error: ClientError) -> bool:
    """Application Auto Scaling answers a missing policy or target with ObjectNotFoundException (some
    implementations: a ValidationException saying so)."""
    detail = error.response.get("Error", {})
    code, message = str(detail.get("Code", "")), str(detail.get("Message", ""))
    return code == "ObjectNotFoundException" or (
        code == "ValidationException"
        and bool(re.search(r"no scal\w* (policy|target)", message, re.IGNORECASE))
    )


def _package_environment(package: dict[str, Any]) -> dict[str, str]:
    """The package container's own environment (the registry name RegisterModel set)."""
    container = package["InferenceSpecification"]["Containers"][0]
    return {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}


def default_role_arn(client_sts: Any) -> str:
    """The platform's SageMaker execution role in the caller's account (the CDK app creates it)."""
    from cdp.aws_resources import SAGEMAKER_EXECUTION_ROLE

    identity = client_sts.get_caller_identity()
    partition = str(identity["Arn"]).split(":")[1]
    return f"arn:{partition}:iam::{identity['Account']}:role/{SAGEMAKER_EXECUTION_ROLE}"


def main(argv: Sequence[str] | None = None) -> int:
    """Deploy one approved package; prints one line. Exits 0 when deployed, 2 when it could not be."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--model-package-arn", required=True, help="the approved model package (version)")
    parser.add_argument("--role-arn", help="execution role of the model (default: the platform's role)")
    parser.add_argument("--kms-key", help="KMS key of the endpoint's storage (default: CDP_KMS_KEY_ID)")
    parser.add_argument("--instance-type", help="default: CDP_ENDPOINT_INSTANCE_TYPE")
    parser.add_argument(
        "--instance-count", type=int, default=1, help="instances at least (autoscaling's floor)"
    )
    parser.add_argument(
        "--max-instances", type=int, help="autoscaling's ceiling (default: CDP_ENDPOINT_MAX_INSTANCES)"
    )
    parser.add_argument("--endpoint-name", help="default: the model's name (the package's group)")
    parser.add_argument(
        "--wait-seconds", type=float, default=0.0, help="wait this long for an endpoint being updated"
    )
    args = parser.parse_args(argv)
    from cdp.aws_clients import aws_client
    from cdp.settings import get_settings

    settings = get_settings()
    try:
        if args.instance_count < 1:
            raise DeployError("--instance-count must be at least 1")
        request = DeployRequest(
            package_arn=args.model_package_arn,
            role_arn=args.role_arn or default_role_arn(aws_client(settings, "sts")),
            kms_key_id=args.kms_key or settings.kms_key_id,
            instance_type=args.instance_type or settings.endpoint_instance_type,
            instance_count=args.instance_count,
            endpoint_name=args.endpoint_name,
            max_instance_count=args.max_instances,
        )
        autoscaler = EndpointAutoscaler(
            aws_client(settings, "application-autoscaling"),
            max_instances=settings.endpoint_max_instances,
            invocations_per_instance=settings.endpoint_invocations_per_instance,
        )
        deployment = EndpointDeployer(
            aws_client(settings, "sagemaker"), wait_seconds=args.wait_seconds, autoscaler=autoscaler
        ).deploy(request)
    except DeployError as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 2
    except ClientError as error:
        detail = error.response.get("Error", {})
        message = " ".join(str(detail.get("Message", "")).split())[:300]
        print(
            f"deploy of {args.model_package_arn}: {detail.get('Code', 'error')}: {message}", file=sys.stderr
        )
        return 2
    except BotoCoreError as error:
        print(f"deploy of {args.model_package_arn}: {' '.join(str(error).split())[:300]}", file=sys.stderr)
        return 2
    print(deployment.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
