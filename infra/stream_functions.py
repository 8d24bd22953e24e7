"""The streaming path's Lambdas, in the private network:

- extraction (`cdp.corebanking.stream_extract.lambda_handler`): core banking's transactions table stream
  (new images) -> protection with per-customer data keys -> the Kinesis stream;
- transform (`inference.streaming.handler.lambda_handler`): the Kinesis stream -> online features, the
  fraud endpoint, the lake (`transactions_scored`, `fraud_alerts`, `stream_quarantine`), and, while the
  fraud model has a challenger, that challenger's shadow scores (`transactions_shadow`: it reads the
  registry's challenger tag and loads the version's artifacts from the lake), with Powertools'
  partial batch responses (`ReportBatchItemFailures`), the idempotency table, and an SQS on-failure
  destination for batches that still fail after the retries.
"""

from __future__ import annotations

from collections.abc import Mapping

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdp.aws_resources import DATA_KEYS_TABLE, IDEMPOTENCY_TABLE, MODEL_REGISTRY_PREFIX, ONLINE_FEATURES_TABLE
from cdp.oltp.dynamodb import ERASURES
from inference.streaming.scored import FRAUD_ALERTS, STREAM_QUARANTINE, TRANSACTIONS_SCORED
from inference.streaming.shadow import TRANSACTIONS_SHADOW
from infra.images import lambda_code
from infra.nag_rules import suppress
from infra.network import PrivateNetwork
from infra.roles import PlatformRole
from infra.runtime_access import RuntimeAccess, accept_scoped_wildcards

EXTRACT_HANDLER = "cdp.corebanking.stream_extract.lambda_handler"
TRANSFORM_HANDLER = "inference.streaming.handler.lambda_handler"
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
BATCH_SIZE = 500
RETRY_ATTEMPTS = 5
MAX_RECORD_AGE = Duration.hours(6)


def function_log_group(scope: Construct, construct_id: str, key: kms.IKey) -> logs.LogGroup:
    """A function's own log group: the platform key, a year's retention, kept on stack deletion."""
    return logs.LogGroup(
        scope, construct_id, encryption_key=key, retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN
    )


def private_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    description: str,
    network: PrivateNetwork,
    access: RuntimeAccess,
    environment: Mapping[str, str],
    memory_mb: int = 1024,
    timeout: Duration = Duration.minutes(1),
) -> lambda_.DockerImageFunction:
    """A function of the Lambda image in the private subnets, with its own role and log group."""
    role = PlatformRole(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    log_group = function_log_group(scope, f"{construct_id}Logs", access.key)
    function = lambda_.DockerImageFunction(
        scope,
        construct_id,
        code=lambda_code(handler),
        description=description,
        role=role,
        memory_size=memory_mb,
        timeout=timeout,
        architecture=lambda_.Architecture.X86_64,
        vpc=network.vpc,
        vpc_subnets=network.subnets,
        security_groups=[network.security_group],
        environment=dict(environment),
        log_group=log_group,
        tracing=lambda_.Tracing.DISABLED,
    )
    role.add_to_policy(
        iam.PolicyStatement(
            sid="OwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    role.add_to_policy(access.network_interfaces())
    accept_scoped_wildcards(role)
    return function


class StreamFunctions(Construct):
    """Extraction and transform functions with their event sources and the transform's DLQ."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: PrivateNetwork,
        access: RuntimeAccess,
        environment: Mapping[str, str],
        transactions_table: dynamodb.ITable,
        stream: kinesis.IStream,
    ) -> None:
        super().__init__(scope, construct_id)
        names, key = access.names, access.key
        self.extract = private_function(
            self,
            "Extract",
            handler=EXTRACT_HANDLER,
            description="CDP extraction: core-banking transactions -> protected records on the stream",
            network=network,
            access=access,
            environment=environment,
        )
        self.extract.add_event_source_mapping(
            "CoreBankingInserts",
            event_source_arn=transactions_table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS,
            filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")})],
        )
        for statement in (
            iam.PolicyStatement(
                sid="CoreBankingStream",
                actions=["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                resources=[transactions_table.table_stream_arn],
            ),
            iam.PolicyStatement(sid="ListStreams", actions=["dynamodb:ListStreams"], resources=["*"]),
            access.tables("Tombstones", [ERASURES], ["dynamodb:Scan", "dynamodb:GetItem"]),
            access.tables(
                "WrappedDataKeys",
                [DATA_KEYS_TABLE],
                ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
            ),
            access.data_keys(),
            access.key_via(["dynamodb", "kinesis"]),
            iam.PolicyStatement(
                sid="PutOnStream",
                actions=["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
                resources=[stream.stream_arn],
            ),
        ):
            self.extract.add_to_role_policy(statement)

        self.failed_batches = sqs.Queue(
            self,
            "FailedBatches",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        suppress(
            self.failed_batches,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination: the transform's event source sends it the "
            "batches that still fail after the retries (on-failure destination); it has no consumer to fail.",
        )
        self.transform = private_function(
            self,
            "Transform",
            handler=TRANSFORM_HANDLER,
            description="CDP stream transform: stream -> features, fraud endpoint, lake and alerts",
            network=network,
            access=access,
            environment=environment,
            memory_mb=2048,
            timeout=Duration.minutes(5),
        )
        self.transform.add_event_source_mapping(
            "Transactions",
            event_source_arn=stream.stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=BATCH_SIZE,
            max_batching_window=Duration.seconds(5),
            bisect_batch_on_error=True,
            retry_attempts=RETRY_ATTEMPTS,
            max_record_age=MAX_RECORD_AGE,
            report_batch_item_failures=True,
            on_failure=_SqsDestination(self.failed_batches),
        )
        written = [f"{t.name}/" for t in (TRANSACTIONS_SCORED, FRAUD_ALERTS, STREAM_QUARANTINE)]
        for statement in (
            iam.PolicyStatement(
                sid="ReadStream",
                actions=[
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:ListShards",
                ],
                resources=[stream.stream_arn],
            ),
            iam.PolicyStatement(
                sid="FailedBatchesDestination",
                actions=["sqs:SendMessage", "sqs:GetQueueAttributes"],
                resources=[self.failed_batches.queue_arn],
            ),
            access.tables(
                "OnlineStateAndClaims",
                [ONLINE_FEATURES_TABLE, IDEMPOTENCY_TABLE],
                [
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:Query",
                    "dynamodb:DescribeTable",
                ],
            ),
            access.lake_write(written, sid="ScoredRowsAlertsQuarantine"),
            access.lake_write([f"{TRANSACTIONS_SHADOW.name}/"], sid="ChallengerShadowRows"),
            *access.registry_read(list_versions=False),
            *access.lake_read([f"{MODEL_REGISTRY_PREFIX}/"], sid="ChallengerArtifacts"),
            *access.lake_read(["transactions/", "cards/"], sid="CardProfiles"),
            *access.queries(write_catalog=True),
            access.key_via(["s3", "dynamodb", "kinesis", "sqs"]),
            iam.PolicyStatement(
                sid="ScoreOnTheEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[access.arn("sagemaker", f"endpoint/{names.fraud_endpoint}")],
            ),
            access.metrics(),
        ):
            self.transform.add_to_role_policy(statement)


@jsii.implements(lambda_.IEventSourceDlq)
class _SqsDestination:
    """The on-failure destination without the CDK's grant (the role's own statement above grants it)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(
        self, target: lambda_.IEventSourceMapping, target_handler: lambda_.IFunction
    ) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)
