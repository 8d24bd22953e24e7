"""Names of the AWS resources that come from the model pipelines (above `cdp`, so not in
`cdp.aws_resources`, which names everything else for the adapters and the stacks alike)."""

from __future__ import annotations

from monitoring.rules import PIPELINES
from pipelines.models import spec_of


def pipeline_name(pipeline: str) -> str:
    """The SageMaker pipeline of a short pipeline name (`fraud` -> `cdp-fraud`)."""
    return spec_of(pipeline).pipeline_name


def model_package_groups() -> list[str]:
    """The registry's model package groups, one per model of the loop (`cdp-fraud`, ...)."""
    groups = [spec_of(pipeline).model_package_group for pipeline in PIPELINES.values()]
    if sorted(groups) != sorted(PIPELINES):
        raise ValueError("pipelines/spec.py and monitoring/rules.py disagree on the model package groups")
    return groups
