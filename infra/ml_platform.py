"""The ML platform: the SageMaker execution role of the model pipelines and the model package groups of
the registry (`cdp-fraud`, `cdp-clv`, `cdp-segmentation`)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from cdp.aws_resources import ATHENA_WORKGROUP, GLUE_DATABASE, SAGEMAKER_EXECUTION_ROLE
from infra.nag_rules import suppress
from infra.resource_names import model_package_groups
from infra.roles import PlatformRole


class MlPlatformStack(Stack):
    """Role and registry for the pipelines (the pipelines themselves are upserted by `run-pipeline`)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, lake: s3.IBucket, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.groups = [
            sagemaker.CfnModelPackageGroup(
                self,
                f"Group-{name}",
                model_package_group_name=name,
                model_package_group_description=f"{name}: versions registered by its pipeline",
            )
            for name in model_package_groups()
        ]
        self.execution_role = PlatformRole(
            self,
            "ExecutionRole",
            role_name=SAGEMAKER_EXECUTION_ROLE,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="CDP pipelines, training/processing jobs and endpoints",
        )
        self._grant_pipeline_permissions(key, lake)

    def _arn(self, resource: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{resource}"

    def _grant_pipeline_permissions(self, key: kms.IKey, lake: s3.IBucket) -> None:
        role = self.execution_role
        statements = [
            iam.PolicyStatement(
                sid="LakeObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"],
                resources=[lake.bucket_arn, lake.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="PlatformKey",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
            ),
            iam.PolicyStatement(
                sid="FeatureQueries",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[
                    f"arn:{self.partition}:athena:{self.region}:{self.account}:workgroup/{ATHENA_WORKGROUP}"
                ],
            ),
            iam.PolicyStatement(
                sid="Catalog",
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                resources=[
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:catalog",
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:database/{GLUE_DATABASE}",
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:table/{GLUE_DATABASE}/*",
                ],
            ),
            iam.PolicyStatement(
                sid="Jobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[self._arn("processing-job/*"), self._arn("training-job/*")],
            ),
            iam.PolicyStatement(
                sid="Registry",
                actions=[
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                ],
                resources=[self._arn("model-package-group/cdp-*"), self._arn("model-package/cdp-*/*")],
            ),
            iam.PolicyStatement(
                sid="PassItselfToJobs",
                actions=["iam:PassRole"],
                resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[
                    f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/*"
                ],
            ),
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "CDP/*"]}},
            ),
            iam.PolicyStatement(sid="ImageLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="FrameworkImages",
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=[f"arn:{self.partition}:ecr:{self.region}:*:repository/sagemaker-*"],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        suppress(
            role,
            "AwsSolutions-IAM5",
            "Job, log-group, table and object names are generated per pipeline run; each wildcard is scoped "
            "to the platform's bucket, database, SageMaker job types, cdp-* registry groups or SageMaker's "
            "framework image repositories (owned by AWS accounts that differ per region). Actions on '*' "
            "are those IAM gives no resource for (see infra.nag_rules.STAR_RESOURCE_ACTIONS).",
            applies_to=[
                # the lake's objects, as a reference or as an import from the data plane stack
                {"regex": "/^Resource::.*Lake[0-9A-F]+\\.?Arn.*\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:glue:.*:table\\/cdp\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*:(processing|training)-job\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*:model-package.*\\/cdp-\\*.*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:logs:.*:log-group:\\/aws\\/sagemaker\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:ecr:.*:\\*:repository\\/sagemaker-\\*$/g"},
                "Resource::*",
            ],
        )
