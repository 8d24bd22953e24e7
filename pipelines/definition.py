"""Build a model's pipeline definition JSON offline (moto stands in for AWS while the SDK runs).

The SDK uploads the step scripts while it builds the definition. Offline, those uploads land in moto's
S3 and are then copied into the given object store at the same `s3://` URIs, so the local executor finds
the code exactly where the definition says it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.models import pipeline_module
from pipelines.sdk_environment import prepare_sdk_environment, quiet_sdk_logging

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore

OFFLINE_ROLE = "arn:aws:iam::000000000000:role/cdp-sagemaker-execution"
OFFLINE_ACCOUNT_IMAGES = "000000000000.dkr.ecr.{region}.amazonaws.com"


def build_definition(
    model: str,
    *,
    bucket: str,
    region: str,
    role: str = OFFLINE_ROLE,
    scripts_dir: Path | None = None,
    object_store: ObjectStore | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The definition (parsed JSON) of `model`'s pipeline, built without network or AWS account.

    When `object_store` is given, every object the SDK uploaded (step scripts, training drivers) is copied
    into it.
    """
    prepare_sdk_environment(region)
    import boto3
    from moto import mock_aws

    with mock_aws(), quiet_sdk_logging():
        boto_session = boto3.Session(region_name=region)
        s3 = boto_session.client("s3")
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **location)
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        session = PipelineSession(boto_session=boto_session, default_bucket=bucket)
        pipeline = pipeline_module(model).get_pipeline(
            session, role, bucket, scripts_dir=scripts_dir, **options
        )
        definition = json.loads(pipeline.definition())
        if object_store is not None:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    object_store.put_bytes(f"s3://{bucket}/{item['Key']}", body)
    return definition
