"""Names of every AWS resource the adapters address, derived from the platform settings.

The CDK app creates resources under exactly the names the AWS adapters look up (`cdp/settings.py`,
`cdp/backends.py`, the DynamoDB adapters, `pipelines/spec.py`), so one `CDP_*` environment configures both.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.settings import Settings
from monitoring.rules import PIPELINES
from pipelines.models import spec_of

GLUE_DATABASE = "cdp"  # cdp.catalog.athena.DATABASE
ATHENA_RESULTS_PREFIX = "_athena-results/"  # cdp/backends.py: s3://<lake bucket>/_athena-results/
ATHENA_WORKGROUP = "cdp"
ATHENA_ANALYST_RESULTS_PREFIX = "_athena-analyst-results/"  # the analyst workgroup's enforced location
SAGEMAKER_EXECUTION_ROLE = "cdp-sagemaker-execution"  # pipelines/definition.py writes this role's ARN


@dataclass(frozen=True)
class ResourceNames:
    """The names the stacks give their resources."""

    lake_bucket: str
    stream: str
    table_prefix: str
    kms_alias: str
    event_bus: str
    region: str
    analyst_workgroup: str = "cdp-analyst"  # settings.athena_analyst_workgroup (cdp/backends.py)
    audit_table: str = "cdp-audit"  # settings.audit_table (cdp/security/audit/dynamodb.py)
    card_verification_alias: str | None = None  # None: the CVK exists already (imported), named by ARN

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceNames:
        alias = settings.kms_key_id
        if not alias.startswith("alias/"):
            raise ValueError(
                "CDP_KMS_KEY_ID must be a key alias (alias/...) for the CDK app to create the key"
            )
        return cls(
            lake_bucket=settings.lake_bucket,
            stream=settings.stream_name,
            table_prefix=settings.dynamodb_table_prefix,
            kms_alias=alias,
            event_bus=settings.event_bus_name,
            region=settings.aws_region,
            analyst_workgroup=settings.athena_analyst_workgroup,
            audit_table=settings.audit_table,
            card_verification_alias=(
                settings.card_verification_key_arn
                if settings.card_verification_key_arn.startswith("alias/")
                else None
            ),
        )

    def table(self, suffix: str) -> str:
        """`<prefix><suffix>`, the way every DynamoDB adapter names its table."""
        return f"{self.table_prefix}{suffix}"


def pipeline_name(pipeline: str) -> str:
    """The SageMaker pipeline of a short pipeline name (`fraud` -> `cdp-fraud`)."""
    return spec_of(pipeline).pipeline_name


def model_package_groups() -> list[str]:
    """The registry's model package groups, one per model of the loop (`cdp-fraud`, ...)."""
    groups = [spec_of(pipeline).model_package_group for pipeline in PIPELINES.values()]
    if sorted(groups) != sorted(PIPELINES):
        raise ValueError("pipelines/spec.py and monitoring/rules.py disagree on the model package groups")
    return groups
