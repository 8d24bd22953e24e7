"""Analyst access in AWS: the Athena workgroup analysts' SQL runs in (`cdp sql` with the AWS backend sends
it there) and the one policy analysts get, attached to a role they assume.

The policy allows Athena queries in that workgroup only, reading the Glue catalog of the `cdp` database,
reading the lake's table prefixes only (not the platform's query results, manifests, pipeline code or model
artifacts), writing their own query results, and the lake key through S3 only: `kms:ViaService` keeps
`kms:Decrypt` from unwrapping the per-customer data keys, which the same key protects.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdp.aws_resources import ATHENA_ANALYST_RESULTS_PREFIX, AwsResources
from cdp.lake.tables import ALL_TABLES
from features.asof_render import AS_OF_TABLE
from features.customer_tables import CLV_TRAINING_SET, CUSTOMER_FEATURES, SEGMENTATION_TRAINING_SET
from features.materialize import features_table_name
from features.views import EVENT_VIEWS
from inference.streaming.scored import FRAUD_ALERTS, TRANSACTIONS_SCORED
from infra.nag_rules import suppress

ANALYST_ROLE = "cdp-analyst"
ANALYST_POLICY = "cdp-analyst-sql"
SCAN_CUTOFF_BYTES = 100 * 1024**3  # an analyst query that would scan more is cancelled by Athena


def analyst_table_prefixes() -> list[str]:
    """The lake prefixes that hold table data analysts may query (protected data only)."""
    tables = [t.name for t in ALL_TABLES] + [TRANSACTIONS_SCORED.name, FRAUD_ALERTS.name]
    tables += [features_table_name(view) for view in EVENT_VIEWS]
    tables += [CUSTOMER_FEATURES, CLV_TRAINING_SET, SEGMENTATION_TRAINING_SET, AS_OF_TABLE, "training_sets"]
    return [f"{name}/" for name in sorted(set(tables))]


class AnalystAccess(Construct):
    """The analyst workgroup, the analyst policy and the role that carries it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: AwsResources,
        key: kms.IKey,
        lake: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        results = names.athena_analyst_results
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=names.analyst_workgroup,
            description="CDP analyst SQL: read-only SELECTs over the lake tables; results encrypted",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=SCAN_CUTOFF_BYTES,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=ANALYST_POLICY,
            description="CDP analysts: Athena in the analyst workgroup over the lake's tables, read-only",
            statements=self._statements(names, key, lake),
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=ANALYST_ROLE,
            assumed_by=iam.AccountRootPrincipal(),
            description="CDP analysts (data scientists): read-only SQL over the protected lake tables",
            managed_policies=[self.policy],
            max_session_duration=Duration.hours(4),
        )
        suppress(
            self.policy,
            "AwsSolutions-IAM5",
            "Object keys under each lake table prefix and the analyst results prefix, and the tables of the "
            "cdp Glue database, are created by the platform's jobs and queries; each wildcard is scoped to "
            "one of those prefixes or to the one database.",
            applies_to=[
                {"regex": "/^Resource::.*Lake[0-9A-F]+\\.?Arn.*\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:glue:.*:table\\/cdp\\/\\*$/g"},
            ],
        )

    def _statements(self, names: AwsResources, key: kms.IKey, lake: s3.IBucket) -> list[iam.PolicyStatement]:
        stack = self.workgroup.stack
        prefixes = analyst_table_prefixes()
        arn = f"arn:{stack.partition}"
        return [
            iam.PolicyStatement(
                sid="AnalystWorkgroupOnly",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                    "athena:ListQueryExecutions",
                    "athena:GetWorkGroup",
                ],
                resources=[
                    f"{arn}:athena:{stack.region}:{stack.account}:workgroup/{names.analyst_workgroup}"
                ],
            ),
            iam.PolicyStatement(
                sid="CatalogRead",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                ],
                resources=[
                    f"{arn}:glue:{stack.region}:{stack.account}:catalog",
                    f"{arn}:glue:{stack.region}:{stack.account}:database/{names.glue_database}",
                    f"{arn}:glue:{stack.region}:{stack.account}:table/{names.glue_database}/*",
                ],
            ),
            iam.PolicyStatement(
                sid="LakeTablesRead",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            ),
            iam.PolicyStatement(
                sid="LakeTablesList",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{p}*" for p in [*prefixes, ATHENA_ANALYST_RESULTS_PREFIX]]}
                },
            ),
            iam.PolicyStatement(
                sid="LakeLocation", actions=["s3:GetBucketLocation"], resources=[lake.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="OwnResults",
                actions=[
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                resources=[lake.arn_for_objects(f"{ATHENA_ANALYST_RESULTS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="LakeKeyThroughS3Only",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            ),
        ]
