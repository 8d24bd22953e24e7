"""What a smoke run created, and its removal: only resources carrying this run's tag (or, for S3 objects
and Glue tables, living under names that contain the run id) are ever deleted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from infra.smoke.clients import Clients

SMOKE_TAG = "cdp:smoke"


@dataclass
class Ledger:
    """Resources created by run `run_id`, in creation order; `clean_up` removes them newest first."""

    run_id: str
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def tag(self) -> dict[str, str]:
        return {SMOKE_TAG: self.run_id}

    def tags(self) -> list[dict[str, str]]:
        """The tag in the `[{"Key", "Value"}]` shape of SageMaker and most other APIs."""
        return [{"Key": k, "Value": v} for k, v in self.tag.items()]

    def add(self, kind: str, name: str) -> None:
        self.created.append((kind, name))

    def clean_up(self, clients: Clients, report: Callable[[str], None]) -> list[str]:
        """Delete every recorded resource provably this run's; returns the problems (one line each)."""
        problems = []
        for kind, name in reversed(self.created):
            try:
                removed = _REMOVERS[kind](clients, name, self.run_id)
                report(f"  {'deleted' if removed else 'kept (not tagged by this run)'} {kind} {name}")
            except (ClientError, BotoCoreError) as e:
                problems.append(f"{kind} {name}: {' '.join(str(e).split())}")
        return problems


def _sagemaker_tagged(clients: Clients, arn: str, run_id: str) -> bool:
    tags = clients("sagemaker").list_tags(ResourceArn=arn).get("Tags", [])
    return {"Key": SMOKE_TAG, "Value": run_id} in tags


def _endpoint(clients: Clients, name: str, run_id: str) -> bool:
    sm = clients("sagemaker")
    if not _sagemaker_tagged(clients, sm.describe_endpoint(EndpointName=name)["EndpointArn"], run_id):
        return False
    sm.delete_endpoint(EndpointName=name)
    return True


def _endpoint_config(clients: Clients, name: str, run_id: str) -> bool:
    sm = clients("sagemaker")
    arn = sm.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigArn"]
    if not _sagemaker_tagged(clients, arn, run_id):
        return False
    sm.delete_endpoint_config(EndpointConfigName=name)
    return True


def _model(clients: Clients, name: str, run_id: str) -> bool:
    sm = clients("sagemaker")
    if not _sagemaker_tagged(clients, sm.describe_model(ModelName=name)["ModelArn"], run_id):
        return False
    sm.delete_model(ModelName=name)
    return True


def _pipeline(clients: Clients, name: str, run_id: str) -> bool:
    sm = clients("sagemaker")
    if not _sagemaker_tagged(clients, sm.describe_pipeline(PipelineName=name)["PipelineArn"], run_id):
        return False
    sm.delete_pipeline(PipelineName=name)
    return True


def _package_group(clients: Clients, name: str, run_id: str) -> bool:
    """The group and the packages registered into it (the group exists only for this run)."""
    sm = clients("sagemaker")
    arn = sm.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    if not _sagemaker_tagged(clients, arn, run_id):
        return False
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=name):
        for package in page.get("ModelPackageSummaryList", []):
            sm.delete_model_package(ModelPackageName=package["ModelPackageArn"])
    sm.delete_model_package_group(ModelPackageGroupName=name)
    return True


def _glue_table(clients: Clients, name: str, run_id: str) -> bool:
    database, _, table = name.partition(".")
    glue = clients("glue")
    parameters = glue.get_table(DatabaseName=database, Name=table)["Table"].get("Parameters", {})
    if parameters.get(SMOKE_TAG) != run_id:
        return False
    glue.delete_table(DatabaseName=database, Name=table)
    return True


def _s3_prefix(clients: Clients, uri: str, run_id: str) -> bool:
    """Every object under a prefix whose name holds the run id (written by this run's steps)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if run_id not in prefix:
        return False
    s3 = clients("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    return True


_REMOVERS: dict[str, Callable[[Clients, str, str], bool]] = {
    "endpoint": _endpoint,
    "endpoint-config": _endpoint_config,
    "model": _model,
    "pipeline": _pipeline,
    "model-package-group": _package_group,
    "glue-table": _glue_table,
    "s3-prefix": _s3_prefix,
}
