"""Least-privilege statements of the runtime's workloads, built from the names the adapters use.

The platform key is granted two ways only: through a named AWS service (`kms:ViaService`: S3, DynamoDB,
Kinesis, SQS, SNS), which keeps the grant from unwrapping the per-customer data keys; or directly, for the
data keys' own operations, limited to their encryption context's `use` (`pii-fields`, `token-secret`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from cdp.aws_resources import (
    ATHENA_RESULTS_PREFIX,
    ATHENA_WORKGROUP,
    GLUE_DATABASE,
    MODEL_REGISTRY_PREFIX,
    AwsResources,
)
from cdp.registry.sagemaker_registry import CARDS_FOLDER, EVIDENCE_FOLDER, HISTORY_FOLDER
from infra.audit_grants import CHECKPOINT_OBJECTS_FINDING
from infra.nag_rules import suppress

DATA_KEY_USES = ("pii-fields", "token-secret")  # cdp.security.fieldcrypto / cdp.security.tokens contexts
METRIC_NAMESPACES = ["CDP/*"]
REGISTRY_GROUPS = "cdp-*"  # the platform's model package groups (`infra.resource_names.model_package_groups`)
REGISTRY_RECORD_FOLDERS = (EVIDENCE_FOLDER, HISTORY_FOLDER, CARDS_FOLDER)  # what a switch or reject writes


class RuntimeAccess:
    """Statement factory for one stack (ARNs in its partition, region and account)."""

    def __init__(self, stack: Stack, names: AwsResources, key: kms.IKey, lake: s3.IBucket) -> None:
        self.stack, self.names, self.key, self.lake = stack, names, key, lake

    def arn(self, service: str, resource: str) -> str:
        s = self.stack
        return f"arn:{s.partition}:{service}:{s.region}:{s.account}:{resource}"

    def table_arn(self, suffix: str) -> str:
        return self.arn("dynamodb", f"table/{self.names.table(suffix)}")

    # -- key ------------------------------------------------------------------------------------------
    def key_via(
        self, services: Iterable[str], actions: Sequence[str] = ("kms:Decrypt", "kms:GenerateDataKey")
    ):
        """The platform key, used by `services` on the caller's behalf only."""
        region = self.stack.region
        return iam.PolicyStatement(
            sid="PlatformKeyThroughServices",
            actions=list(actions),
            resources=[self.key.key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}
            },
        )

    def data_keys(self) -> iam.PolicyStatement:
        """Wrap and unwrap per-customer data keys and token secrets (their encryption context only)."""
        return iam.PolicyStatement(
            sid="DataKeysByContext",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:use": list(DATA_KEY_USES)}},
        )

    # -- storage --------------------------------------------------------------------------------------
    def lake_read(self, prefixes: Sequence[str], sid: str = "LakeRead") -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid=sid,
                actions=["s3:GetObject"],
                resources=[self.lake.arn_for_objects(f"{p}*") for p in prefixes],
            ),
            iam.PolicyStatement(
                sid=f"{sid}List",
                actions=["s3:ListBucket"],
                resources=[self.lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            ),
        ]

    def lake_write(self, prefixes: Sequence[str], sid: str = "LakeWrite") -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=["s3:PutObject"],
            resources=[self.lake.arn_for_objects(f"{p}*") for p in prefixes],
        )

    def tables(self, sid: str, suffixes: Sequence[str], actions: Sequence[str]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            actions=list(actions),
            resources=[self.table_arn(s) for s in suffixes],
        )

    # -- queries --------------------------------------------------------------------------------------
    def queries(self, write_catalog: bool = False) -> list[iam.PolicyStatement]:
        """Athena in the platform's workgroup (results under the lake's results prefix), Glue reads (and
        table registration with `write_catalog`)."""
        glue = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"]
        if write_catalog:
            glue += [
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:BatchCreatePartition",
                "glue:CreatePartition",
            ]
        return [
            iam.PolicyStatement(
                sid="PlatformQueries",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[self.arn("athena", f"workgroup/{ATHENA_WORKGROUP}")],
            ),
            iam.PolicyStatement(
                sid="Catalog",
                actions=glue,
                resources=[
                    self.arn("glue", "catalog"),
                    self.arn("glue", f"database/{GLUE_DATABASE}"),
                    self.arn("glue", f"table/{GLUE_DATABASE}/*"),
                ],
            ),
            iam.PolicyStatement(
                sid="QueryResults",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.lake.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="QueryResultsBucket", actions=["s3:GetBucketLocation"], resources=[self.lake.bucket_arn]
            ),
        ]

    # -- everything else ------------------------------------------------------------------------------
    def metrics(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid="Metrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": METRIC_NAMESPACES}},
        )

    def registry_read(self, list_versions: bool = True) -> list[iam.PolicyStatement]:
        """The model registry (SageMaker model packages of the cdp-* groups; artifacts in the lake): the
        groups' champion and challenger tags (`ListTags`), and with `list_versions` the group's listing."""
        statements = [
            iam.PolicyStatement(
                sid="RegistryRead",
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListTags",
                ],
                resources=[self.registry_group_arn(), self.registry_package_arn()],
            )
        ]
        if list_versions:
            statements.append(
                iam.PolicyStatement(
                    sid="RegistryList", actions=["sagemaker:ListModelPackages"], resources=["*"]
                )
            )
        return statements

    def registry_group_arn(self) -> str:
        return self.arn("sagemaker", f"model-package-group/{REGISTRY_GROUPS}")

    def registry_package_arn(self) -> str:
        return self.arn("sagemaker", f"model-package/{REGISTRY_GROUPS}/*")

    def registry_decisions(self) -> list[iam.PolicyStatement]:
        """Switch or reject a challenger (`cdp.registry.sagemaker_registry`): a package's approval status,
        the group's champion and challenger tags, and the decision's records beside the artifacts (evidence,
        champion history, model cards), written as new objects under their own folders only."""
        records = [
            f"{MODEL_REGISTRY_PREFIX}/{REGISTRY_GROUPS}/{folder}/" for folder in REGISTRY_RECORD_FOLDERS
        ]
        return [
            iam.PolicyStatement(
                sid="RegistryApproval",
                actions=["sagemaker:UpdateModelPackage"],
                resources=[self.registry_package_arn()],
            ),
            iam.PolicyStatement(
                sid="RegistryAliases",
                actions=["sagemaker:AddTags", "sagemaker:DeleteTags"],
                resources=[self.registry_group_arn()],
            ),
            self.lake_write(records, sid="RegistryRecords"),
        ]

    def network_interfaces(self) -> iam.PolicyStatement:
        """What a Lambda function in a VPC needs to attach to its subnets (AWS documents no resource)."""
        return iam.PolicyStatement(
            sid="VpcNetworkInterfaces",
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            resources=["*"],
        )


SCOPED_WILDCARDS = [
    # lake objects under a named prefix (a reference, or an import from the data plane stack)
    {"regex": "/^Resource::.*Lake[0-9A-F]+\\.?Arn.*\\/([a-z_-]+\\/)?\\*$/g"},
    {"regex": "/^Resource::arn:<AWS::Partition>:glue:.*:table\\/cdp\\/\\*$/g"},
    {"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*:model-package.*\\/cdp-\\*.*$/g"},
    {"regex": "/^Resource::arn:<AWS::Partition>:cloudwatch:.*:alarm:cdp-\\*$/g"},
    CHECKPOINT_OBJECTS_FINDING,
    "Resource::*",
]


def accept_scoped_wildcards(role: IConstruct) -> None:
    """The runtime roles' wildcards: each is a prefix of the platform's own names (documented here), and
    `*` resources only for actions without resource-level permissions (`STAR_RESOURCE_ACTIONS`, tested)."""
    suppress(
        role,
        "AwsSolutions-IAM5",
        "Objects are written and read per partition and batch under one named lake prefix per table "
        "(e.g. transactions_scored/*), Glue tables are registered by the workloads in the cdp database, "
        "model versions are read in the cdp-* registry groups (and, by the drift job's switch, their "
        "evidence, champion history and model cards written under model-registry/cdp-*/<folder>/), alarms "
        "are the loop's cdp-* alarms, audit checkpoints are one object per checkpoint under the checkpoint "
        "bucket's audit-checkpoints/ prefix (write-once, Object Lock); "
        "actions on '*' are only those IAM gives no resource for (infra.nag_rules.STAR_RESOURCE_ACTIONS, "
        "checked by a test).",
        applies_to=SCOPED_WILDCARDS,
    )
