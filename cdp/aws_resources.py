"""Names of every AWS resource the platform addresses, derived from the settings: the one source for the
AWS adapters (`from_settings`) and for the CDK app (`infra/`), so one set of `CDP_*` variables configures
both.

The SageMaker pipelines and model package groups are named by the pipeline specs (`pipelines/spec.py`,
`cdp-<model>`), above this package; `infra/resource_names.py` adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdp.settings import Settings

GLUE_DATABASE = "cdp"  # the Glue database of the lake's tables
ATHENA_WORKGROUP = "cdp"  # the platform's queries: results encrypted with the platform key, enforced
ATHENA_RESULTS_PREFIX = "_athena-results/"  # the platform workgroup's results, under the lake bucket
ATHENA_ANALYST_RESULTS_PREFIX = "_athena-analyst-results/"  # the analyst workgroup's enforced location
SAGEMAKER_EXECUTION_ROLE = "cdp-sagemaker-execution"  # pipelines, jobs and endpoints run as this role
MODEL_REGISTRY_PREFIX = "model-registry"  # the SageMaker registry's artifacts, under the lake bucket

# DynamoDB tables are `<CDP_DYNAMODB_TABLE_PREFIX><suffix>` (the OLTP store's one per record type:
# `cdp.oltp.dynamodb.TABLE_KEYS`); the audit log's table is named on its own (`CDP_AUDIT_TABLE`).
STREAM_CHECKPOINTS_TABLE = "stream-checkpoints"
ONLINE_FEATURES_TABLE = "online-features"
DATA_KEYS_TABLE = "data-keys"
ERASURE_REQUESTS_TABLE = "erasure-requests"
API_KEYS_TABLE = "api-keys"
IDEMPOTENCY_TABLE = "landed-index"  # the deployed table name (renaming it would drop the live claims)
NOTICE_REPLIES_TABLE = "notice-replies"  # fraud notices' reply codes and the customers' answers


@dataclass(frozen=True)
class AwsResources:
    """The names of the platform's AWS resources in one environment."""

    region: str
    lake_bucket: str
    stream: str
    table_prefix: str
    kms_key_id: str
    event_bus: str
    analyst_workgroup: str
    audit_table: str
    audit_checkpoint_bucket: str
    fraud_endpoint: str
    card_verification_key: str
    glue_database: str = GLUE_DATABASE
    workgroup: str = ATHENA_WORKGROUP

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsResources:
        return cls(
            region=settings.aws_region,
            lake_bucket=settings.lake_bucket,
            stream=settings.stream_name,
            table_prefix=settings.dynamodb_table_prefix,
            kms_key_id=settings.kms_key_id,
            event_bus=settings.event_bus_name,
            analyst_workgroup=settings.athena_analyst_workgroup,
            audit_table=settings.audit_table,
            audit_checkpoint_bucket=settings.audit_checkpoint_bucket,
            fraud_endpoint=settings.fraud_endpoint_name,
            card_verification_key=settings.card_verification_key_arn,
        )

    def table(self, suffix: str) -> str:
        """`<prefix><suffix>`, the way every DynamoDB table of the platform is named."""
        return f"{self.table_prefix}{suffix}"

    @property
    def athena_results(self) -> str:
        """Where the platform workgroup writes query results."""
        return f"s3://{self.lake_bucket}/{ATHENA_RESULTS_PREFIX}"

    @property
    def athena_analyst_results(self) -> str:
        """Where the analyst workgroup writes query results."""
        return f"s3://{self.lake_bucket}/{ATHENA_ANALYST_RESULTS_PREFIX}"

    @property
    def kms_alias(self) -> str:
        """The platform key's alias (the CDK app creates the key under it; adapters address it by it)."""
        if not self.kms_key_id.startswith("alias/"):
            raise ValueError(
                "CDP_KMS_KEY_ID must be a key alias (alias/...) for the CDK app to create the key"
            )
        return self.kms_key_id

    @property
    def card_verification_alias(self) -> str | None:
        """The CVK's alias, or None when the key is named by ARN (an imported key the CDK app leaves)."""
        key = self.card_verification_key
        return key if key.startswith("alias/") else None
