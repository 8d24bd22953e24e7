"""The runtime: what runs the platform's code in AWS, in a private network.

- network (`infra.network`): VPC, private isolated subnets, VPC endpoints, flow logs;
- streaming (`infra.stream_functions`): the extraction and stream-transform Lambdas;
- public API (`infra.public_api`): HTTP API -> the API Lambda;
- jobs (`infra.jobs`): the batch job on a landing drop's arrival, the drift job on a schedule (AWS Batch
  on Fargate); the drift job also switches or rejects challengers, so it audits (`audit`).
Every function and job reads the same `CDP_*` settings the adapters are named by (`runtime_environment`).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdp.aws_resources import AwsResources
from infra.audit_grants import AuditResources
from infra.jobs import RuntimeJobs
from infra.network import PrivateNetwork
from infra.public_api import PublicApi
from infra.runtime_access import RuntimeAccess
from infra.stream_functions import StreamFunctions

RUNTIME_HOME = "/tmp/cdp"  # the only writable place in a Lambda; a Fargate job's scratch too


def runtime_environment(names: AwsResources) -> dict[str, str]:
    """The settings (`CDP_*`) of every function and job: the AWS backend and the names of its resources."""
    return {
        "CDP_BACKEND": "aws",
        "CDP_HOME": RUNTIME_HOME,
        "CDP_AWS_REGION": names.region,
        "CDP_LAKE_BUCKET": names.lake_bucket,
        "CDP_STREAM_NAME": names.stream,
        "CDP_DYNAMODB_TABLE_PREFIX": names.table_prefix,
        "CDP_KMS_KEY_ID": names.kms_key_id,
        "CDP_EVENT_BUS_NAME": names.event_bus,
        "CDP_AUDIT_TABLE": names.audit_table,
        "CDP_AUDIT_CHECKPOINT_BUCKET": names.audit_checkpoint_bucket,
        "CDP_FRAUD_ENDPOINT_NAME": names.fraud_endpoint,
    }


class RuntimeStack(Stack):
    """Network, Lambdas, API and jobs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: AwsResources,
        key: kms.IKey,
        lake: s3.IBucket,
        access_logs: s3.IBucket,
        transactions_table: dynamodb.ITable,
        stream: kinesis.IStream,
        audit: AuditResources,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access = RuntimeAccess(self, names, key, lake)
        environment = runtime_environment(names)
        self.network = PrivateNetwork(self, "Network", flow_logs=access_logs)
        self.streaming = StreamFunctions(
            self,
            "Streaming",
            network=self.network,
            access=access,
            environment=environment,
            transactions_table=transactions_table,
            stream=stream,
        )
        self.api = PublicApi(self, "PublicApi", network=self.network, access=access, environment=environment)
        self.jobs = RuntimeJobs(
            self,
            "Jobs",
            network=self.network,
            access=access,
            environment=environment,
            event_bus=names.event_bus,
            audit=audit,
        )
