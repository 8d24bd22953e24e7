"""QuickSight over the lake's dashboard aggregates, as L1 resources built from `dashboards.quicksight`.

The one definition (`dashboards.quicksight.definition`, committed as `dashboards/quicksight.json`) gives
the Athena data source and one dataset per aggregate table; this construct turns each request body into
an `AWS::QuickSight::DataSource` / `AWS::QuickSight::DataSet` (CloudFormation's property names are the API's),
so the deployed resources and the JSON cannot diverge. The data source queries Athena as its own role
(`QUICKSIGHT_ROLE`): the platform workgroup only, the Glue catalog's aggregate tables, their objects under
the lake's `dashboards/` prefix, the workgroup's results prefix, and the platform key through S3 and Glue
only (`kms:ViaService`, so it cannot unwrap the per-customer data keys).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnTag, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_quicksight as quicksight
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdp.aggregates.locations import AGGREGATES_PREFIX
from cdp.aws_resources import ATHENA_RESULTS_PREFIX, AwsResources
from dashboards.quicksight import DATASETS, QUICKSIGHT_ROLE, definition
from infra.nag_rules import suppress
from infra.roles import PlatformRole

QUICKSIGHT_PRINCIPAL = "quicksight.amazonaws.com"
WORKGROUP_ACTIONS = [
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "athena:StopQueryExecution",
    "athena:GetWorkGroup",
]
CATALOG_ACTIONS = ["athena:GetDataCatalog", "athena:GetDatabase", "athena:GetTableMetadata"]
GLUE_READ_ACTIONS = [
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
]


def _substituted(value: Any, stack: Stack) -> Any:
    """The definition's `${AWS::Region}` / `${AWS::AccountId}` filled with the stack's region and account."""
    if isinstance(value, str):
        return value.replace("${AWS::Region}", stack.region).replace("${AWS::AccountId}", stack.account)
    if isinstance(value, list):
        return [_substituted(v, stack) for v in value]
    if isinstance(value, dict):
        return {k: _substituted(v, stack) for k, v in value.items()}
    return value


class QuickSightDatasets(Construct):
    """The data source, its role and one dataset per aggregate table (`dashboards.quicksight.DATASETS`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: AwsResources,
        key: kms.IKey,
        lake: s3.IBucket,
        workgroup: athena.CfnWorkGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        doc = _substituted(definition(names.glue_database, names.workgroup), stack)
        self.role = PlatformRole(
            self,
            "Role",
            role_name=QUICKSIGHT_ROLE,
            assumed_by=iam.ServicePrincipal(QUICKSIGHT_PRINCIPAL),
            description="CDP QuickSight: Athena in the platform workgroup over the dashboard aggregates",
        )
        for statement in self._statements(stack, names, key, lake):
            self.role.add_to_policy(statement)
        suppress(
            self.role,
            "AwsSolutions-IAM5",
            "QuickSight reads the dashboard aggregate tables only: their Glue tables (cdp/dash_*) and their "
            "objects under the lake's dashboards/ prefix (a fresh run= folder per refresh), and reads and "
            "writes query results under the platform workgroup's results prefix (named per query).",
            applies_to=[
                {"regex": "/^Resource::.*Lake[0-9A-F]+\\.?Arn.*\\/(dashboards|_athena-results)\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:glue:.*:table\\/cdp\\/dash_\\*$/g"},
            ],
        )
        source = doc["DataSource"]
        athena_parameters = source["DataSourceParameters"]["AthenaParameters"]
        self.data_source = quicksight.CfnDataSource(
            self,
            "DataSource",
            aws_account_id=stack.account,
            data_source_id=source["DataSourceId"],
            name=source["Name"],
            type=source["Type"],
            data_source_parameters=quicksight.CfnDataSource.DataSourceParametersProperty(
                athena_parameters=quicksight.CfnDataSource.AthenaParametersProperty(
                    work_group=athena_parameters["WorkGroup"], role_arn=athena_parameters["RoleArn"]
                )
            ),
            ssl_properties=quicksight.CfnDataSource.SslPropertiesProperty(
                disable_ssl=source["SslProperties"]["DisableSsl"]
            ),
        )
        self.data_source.add_resource_dependency(workgroup)
        self.data_source.node.add_dependency(self.role)  # the role and its grants exist before the source
        self.data_sets: dict[str, quicksight.CfnDataSet] = {}
        for body in doc["DataSets"]:
            data_set = quicksight.CfnDataSet(
                self,
                f"DataSet-{body['Name']}",
                aws_account_id=stack.account,
                data_set_id=body["DataSetId"],
                name=body["Name"],
                import_mode=body["ImportMode"],
                tags=[CfnTag(key=tag["Key"], value=tag["Value"]) for tag in body["Tags"]],
            )
            # the API's nested bodies as they are (CloudFormation's property names are the API's)
            for name in ("PhysicalTableMap", "Permissions"):
                data_set.add_property_override(name, body[name])
            data_set.add_resource_dependency(self.data_source)
            self.data_sets[body["Name"]] = data_set
        if set(self.data_sets) != set(DATASETS):
            raise ValueError("the QuickSight definition and its aggregate tables disagree")

    @staticmethod
    def _statements(
        stack: Stack, names: AwsResources, key: kms.IKey, lake: s3.IBucket
    ) -> list[iam.PolicyStatement]:
        def arn(service: str, resource: str) -> str:
            return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

        tables = f"{AGGREGATES_PREFIX}/"
        return [
            iam.PolicyStatement(
                sid="PlatformWorkgroup",
                actions=WORKGROUP_ACTIONS,
                resources=[arn("athena", f"workgroup/{names.workgroup}")],
            ),
            iam.PolicyStatement(
                sid="AthenaCatalog",
                actions=CATALOG_ACTIONS,
                resources=[arn("athena", "datacatalog/AwsDataCatalog")],
            ),
            iam.PolicyStatement(
                sid="AggregateTables",
                actions=GLUE_READ_ACTIONS,
                resources=[
                    arn("glue", "catalog"),
                    arn("glue", f"database/{names.glue_database}"),
                    arn("glue", f"table/{names.glue_database}/dash_*"),
                ],
            ),
            iam.PolicyStatement(
                sid="AggregateObjects",
                actions=["s3:GetObject"],
                resources=[lake.arn_for_objects(f"{tables}*")],
            ),
            iam.PolicyStatement(
                sid="QueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[lake.arn_for_objects(f"{ATHENA_RESULTS_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="LakeList",
                actions=["s3:ListBucket"],
                resources=[lake.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{tables}*", f"{ATHENA_RESULTS_PREFIX}*"]}},
            ),
            iam.PolicyStatement(
                sid="LakeLocation", actions=["s3:GetBucketLocation"], resources=[lake.bucket_arn]
            ),
            iam.PolicyStatement(
                sid="PlatformKeyThroughS3AndGlue",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": [f"{s}.{stack.region}.amazonaws.com" for s in ("s3", "glue")]
                    }
                },
            ),
        ]
