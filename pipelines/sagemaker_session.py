"""The SageMaker SDK session of `run-pipeline` on SageMaker: the platform's region, endpoint and client
configuration (`cdp.aws_clients`) for every client the SDK builds (sagemaker, sagemaker-runtime, s3, ...).

Call `pipelines.sdk_environment.prepare_sdk_environment` before this: it imports the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp.aws_clients import aws_session

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    from cdp.settings import Settings


def pipeline_session(settings: Settings, bucket: str, region: str | None = None) -> PipelineSession:
    """A pipeline session over the settings' AWS endpoint (in `region`, default the settings' region),
    uploading step code to `bucket`."""
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    if region is not None and region != settings.aws_region:
        settings = settings.model_copy(update={"aws_region": region})
    return PipelineSession(boto_session=aws_session(settings), default_bucket=bucket)
