"""Read-only checks of a sandbox account: who the caller is and that the CDK stacks' resources exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from cdp.aws_resources import ATHENA_WORKGROUP, SAGEMAKER_EXECUTION_ROLE, AwsResources
from infra.resource_names import model_package_groups
from infra.smoke.clients import Clients
from infra.table_specs import table_specs


class SmokeError(RuntimeError):
    """The smoke run stops: the message is one line naming what is wrong."""


@dataclass(frozen=True)
class Resource:
    """One resource a stack creates, and the read-only call that finds it (falsy or a not-found error:
    missing)."""

    kind: str
    name: str
    probe: Callable[[Clients], Any]

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


def caller_identity(clients: Clients) -> dict[str, str]:
    """The account and principal the run acts as (`sts:GetCallerIdentity`)."""
    identity = clients("sts").get_caller_identity()
    return {"account": str(identity["Account"]), "arn": str(identity["Arn"])}


def _workgroup_found(clients: Clients, name: str) -> bool:
    answer = clients("athena").get_work_group(WorkGroup=name)
    return (answer.get("WorkGroup") or {}).get("Name") == name


def stack_resources(names: AwsResources) -> list[Resource]:
    """What the data-plane and ML-platform stacks create, in the order they are checked."""
    bucket = names.lake_bucket
    resources = [Resource("S3 bucket", bucket, lambda c: c("s3").head_bucket(Bucket=bucket))]
    tables = [names.table(spec.suffix) for spec in table_specs()] + [names.audit_table]
    resources += [
        Resource("DynamoDB table", t, lambda c, t=t: c("dynamodb").describe_table(TableName=t))
        for t in tables
    ]
    resources.append(
        Resource(
            "Kinesis stream",
            names.stream,
            lambda c: c("kinesis").describe_stream_summary(StreamName=names.stream),
        )
    )
    resources += [
        Resource("Athena workgroup", w, lambda c, w=w: _workgroup_found(c, w))
        for w in (ATHENA_WORKGROUP, names.analyst_workgroup)
    ]
    resources += [
        Resource(
            "model package group",
            g,
            lambda c, g=g: c("sagemaker").describe_model_package_group(ModelPackageGroupName=g),
        )
        for g in model_package_groups()
    ]
    resources.append(
        Resource(
            "IAM role",
            SAGEMAKER_EXECUTION_ROLE,
            lambda c: c("iam").get_role(RoleName=SAGEMAKER_EXECUTION_ROLE),
        )
    )
    return resources


_MISSING = {
    "404",
    "NoSuchBucket",
    "NotFound",
    "NoSuchEntity",
    "ResourceNotFoundException",
    "ValidationException",
    "InvalidRequestException",
}


def check_resources(clients: Clients, names: AwsResources, report: Callable[[str], None]) -> None:
    """Probe every stack resource; raise `SmokeError` naming the first one that is missing or unreadable."""
    for resource in stack_resources(names):
        try:
            found = resource.probe(clients)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise SmokeError(f"missing {resource.describe()}: deploy the CDK stacks first") from None
            raise SmokeError(f"cannot read {resource.describe()}: {code}") from None
        if not found:
            raise SmokeError(f"missing {resource.describe()}: deploy the CDK stacks first")
        report(f"  ok  {resource.describe()}")


def execution_role_arn(clients: Clients) -> str:
    """The ARN of the pipelines' execution role (created by the ML platform stack)."""
    return str(clients("iam").get_role(RoleName=SAGEMAKER_EXECUTION_ROLE)["Role"]["Arn"])
