"""Upsert a model's pipeline on SageMaker and start an execution (what `run-pipeline --role ARN` does).

The definition sent is the one `get-pipeline-definition` prints for the same arguments (both build it
with the model's `get_pipeline`). Parameter overrides are checked against the definition before anything
is written, so a misspelt name fails with one line naming it instead of an execution that ignores it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.models import pipeline_module
from pipelines.sdk_environment import prepare_sdk_environment, quiet_sdk_logging

if TYPE_CHECKING:
    from cdp.settings import Settings


class PipelineRunError(ValueError):
    """A run that cannot start: the message is one line, fit to show a user."""


@dataclass(frozen=True)
class StartedExecution:
    """What a SageMaker run started: the pipeline and its new execution."""

    pipeline_name: str
    pipeline_arn: str
    execution_arn: str


def check_parameters(definition: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
    """Raise `PipelineRunError` naming the overrides the definition does not declare (listing those it
    does), or the first whose value does not fit the parameter's type (Float, Integer, Boolean)."""
    from pipelines.parameters import ParameterError, resolve_overrides

    try:
        resolve_overrides(definition, parameters)
    except ParameterError as error:
        raise PipelineRunError(str(error)) from None


def upsert_and_start(
    model: str,
    *,
    settings: Settings,
    role: str,
    bucket: str,
    region: str | None = None,
    parameters: Mapping[str, str] | None = None,
    scripts_dir: Path | None = None,
    tags: Mapping[str, str] | None = None,
    validate_role: bool = True,
    pipeline_builder: Any = None,
    **options: Any,
) -> StartedExecution:
    """Create or update `model`'s pipeline on SageMaker and start it with `parameters`.

    `pipeline_builder(session, role, bucket, scripts_dir=..., **options)` replaces the model's
    `get_pipeline` (the smoke run uses it for a throw-away copy of a pipeline). `tags` are set on the
    pipeline when it is created or updated. Every client the SDK builds uses the settings' endpoint
    (`CDP_AWS_ENDPOINT_URL`) and client configuration; `region` defaults to the settings' region.
    """
    parameters = dict(parameters or {})
    region = region or settings.aws_region
    prepare_sdk_environment(region, validate_role=validate_role)
    from pipelines.sagemaker_session import pipeline_session

    session = pipeline_session(settings, bucket, region=region)
    build = pipeline_builder or pipeline_module(model).get_pipeline
    with quiet_sdk_logging():
        pipeline = build(session, role, bucket, scripts_dir=scripts_dir, **options)
        check_parameters(json.loads(pipeline.definition()), parameters)
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()] or None
        response = pipeline.upsert(role_arn=role, tags=tag_list)
        execution = pipeline.start(parameters=parameters or None)
    return StartedExecution(
        pipeline_name=pipeline.name,
        pipeline_arn=str(response["PipelineArn"]),
        execution_arn=str(getattr(execution, "arn", execution)),
    )
