"""The runtime's jobs on AWS Batch (Fargate, private subnets, the job image):

- the batch job (`python -m cdp.batch.landing <drop>`): started when a drop's `_READY` marker arrives under
  the lake's `landing/` prefix (an EventBridge rule on the S3 event, the marker's URI as the job's `drop`
  parameter);
- the drift job (`python -m app monitor run`): on an EventBridge Scheduler schedule; it publishes the
  drift metrics the monitoring loop's alarms read, evaluates them and sends the loop's events. First it
  judges each model's challenger on its shadow rows (`monitoring.promotion.switch`): it reads
  `transactions_shadow`, records the comparison as the version's evidence, rejects the challenger or
  approves it by policy (the package's approval status and the group's tags), and audits each decision,
  acting as the promotion-gate service (its role is model-approver in `CDP_IAM_ROLE_MAP`).

Each job has its own role (least privilege) and the image pull/logging execution role; logs go to a log
group encrypted with the platform key.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Fn, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from cdp.aws_resources import DATA_KEYS_TABLE, IDEMPOTENCY_TABLE, MODEL_REGISTRY_PREFIX
from cdp.batch.landing import READY_MARKER
from cdp.oltp.dynamodb import TABLE_KEYS as OLTP_TABLE_KEYS
from inference.streaming.scored import TRANSACTIONS_SCORED
from inference.streaming.shadow import TRANSACTIONS_SHADOW
from infra.audit_grants import AuditResources, grant_audit
from infra.images import job_image
from infra.network import PrivateNetwork
from infra.roles import PlatformRole
from infra.runtime_access import RuntimeAccess, accept_scoped_wildcards
from infra.stream_functions import function_log_group

LANDING_PREFIX = "landing/"
BATCH_COMMAND = ["-m", "cdp.batch.landing", "Ref::drop"]
DRIFT_COMMAND = ["-m", "app", "monitor", "run"]
DRIFT_SCHEDULE = "rate(1 day)"  # drift metrics once a day, before the alarms' daily evaluation periods
MONITORING_PREFIXES = ("monitoring/",)  # drift reports under the lake
# what the drift job reads: events, their scores and the challenger's shadow scores (the comparison), the
# training sets (the drift reference), the registry's artifacts and evidence
DRIFT_READS = (
    "transactions/",
    f"{TRANSACTIONS_SCORED.name}/",
    f"{TRANSACTIONS_SHADOW.name}/",
    "training_sets/",
    f"{MODEL_REGISTRY_PREFIX}/",
)
APPROVER_ROLE = "model-approver"  # the platform role the promotion-gate service acts with


def approver_map(role: iam.IRole) -> dict[str, str]:
    """`CDP_IAM_ROLE_MAP` giving `role` the platform role model-approver (its identity in AWS is the role)."""
    return {"CDP_IAM_ROLE_MAP": Fn.join("", ['{"', role.role_arn, f'": ["{APPROVER_ROLE}"]}}'])}


class RuntimeJobs(Construct):
    """Compute environment, queue, job definitions, the S3-arrival rule and the drift schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: PrivateNetwork,
        access: RuntimeAccess,
        environment: Mapping[str, str],
        event_bus: str,
        audit: AuditResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self._access = access
        self.compute = batch.FargateComputeEnvironment(
            self,
            "Fargate",
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[network.security_group],
            maxv_cpus=64,
            replace_compute_environment=False,
        )
        self.queue = batch.JobQueue(
            self, "Queue", job_queue_name="cdp-jobs", compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute, order=1)
            ]
        )  # fmt: skip
        self.image = job_image(self, "Image")
        self.logs = function_log_group(self, "Logs", access.key)
        self.execution_role = PlatformRole(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="CDP jobs: pull the job image, write the job logs",
        )
        self.batch_role = self._job_role("BatchJobRole", "CDP batch job: landing drop -> core banking, lake")
        self.drift_role = self._job_role(
            "DriftJobRole", "CDP drift job: lake reads, drift metrics, loop events"
        )
        self.batch_job = self._definition(
            "BatchJob", BATCH_COMMAND, self.batch_role, environment, vcpu=4, memory_gib=16, parameters={
                "drop": f"s3://{access.names.lake_bucket}/{LANDING_PREFIX}"
            }
        )  # fmt: skip
        self.drift_job = self._definition(
            "DriftJob", DRIFT_COMMAND, self.drift_role, {**environment, **approver_map(self.drift_role)},
            vcpu=2, memory_gib=8,
        )  # fmt: skip
        self._grant_batch(access)
        self._grant_drift(access, event_bus)
        grant_audit(self.drift_role, audit)
        self.arrival_rule = self._arrival_rule(access)
        self.drift_schedule = self._drift_schedule()
        for role in (self.execution_role, self.batch_role, self.drift_role):  # after their grants exist
            accept_scoped_wildcards(role)

    def _job_role(self, construct_id: str, description: str) -> PlatformRole:
        return PlatformRole(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=description,
        )

    def _definition(
        self,
        construct_id: str,
        command: list[str],
        role: iam.IRole,
        environment: Mapping[str, str],
        *,
        vcpu: float,
        memory_gib: int,
        parameters: Mapping[str, str] | None = None,
    ) -> batch.EcsJobDefinition:
        container = batch.EcsFargateContainerDefinition(
            self,
            f"{construct_id}Container",
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            command=command,
            cpu=vcpu,
            memory=Size.gibibytes(memory_gib),
            environment=dict(environment),
            execution_role=self.execution_role,
            job_role=role,
            readonly_root_filesystem=False,  # the job's scratch (landing files, state) is under /tmp
            fargate_cpu_architecture=ecs.CpuArchitecture.X86_64,
            ephemeral_storage_size=Size.gibibytes(100),
            logging=ecs.LogDriver.aws_logs(stream_prefix=construct_id, log_group=self.logs),
        )
        return batch.EcsJobDefinition(
            self,
            construct_id,
            container=container,
            parameters=dict(parameters or {}),
            retry_attempts=2,
            timeout=Duration.hours(12),
            propagate_tags=True,
        )

    def _grant_batch(self, access: RuntimeAccess) -> None:
        """The batch path: the drop and every lake table, core banking's tables, data keys, the catalog."""
        oltp = list(OLTP_TABLE_KEYS)
        for statement in (
            iam.PolicyStatement(
                sid="LakeObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[access.lake.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="LakeList", actions=["s3:ListBucket"], resources=[access.lake.bucket_arn]
            ),
            access.tables(
                "CoreBanking",
                oltp,
                [
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:DescribeTable",
                ],
            ),
            access.tables(
                "WrappedDataKeys",
                [DATA_KEYS_TABLE, IDEMPOTENCY_TABLE],
                [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                ],
            ),
            access.data_keys(),
            access.key_via(["s3", "dynamodb"]),
            *access.queries(write_catalog=True),
            access.metrics(),
        ):
            self.batch_role.add_to_policy(statement)

    def _grant_drift(self, access: RuntimeAccess, event_bus: str) -> None:
        """The drift job: reads the lake (through Athena; the shadow rows too), writes its reports,
        publishes metrics, reads and sets its alarms' state, sends the loop's events, switches or rejects
        challengers in the registry (its audit rights are granted apart: `infra.audit_grants`)."""
        for statement in (
            *access.queries(),
            *access.lake_read(DRIFT_READS),
            access.lake_write(list(MONITORING_PREFIXES), sid="DriftReports"),
            access.key_via(["s3", "dynamodb"]),  # the audit table is encrypted with the platform key
            access.metrics(),
            iam.PolicyStatement(
                sid="LoopAlarms",
                actions=[
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:SetAlarmState",
                ],
                resources=[access.arn("cloudwatch", "alarm:cdp-*")],
            ),
            iam.PolicyStatement(
                sid="LoopEvents",
                actions=["events:PutEvents"],
                resources=[access.arn("events", f"event-bus/{event_bus}")],
            ),
            *access.registry_read(),
            *access.registry_decisions(),
        ):
            self.drift_role.add_to_policy(statement)

    def _arrival_rule(self, access: RuntimeAccess) -> events.CfnRule:
        """A drop's `_READY` marker in the lake's landing prefix submits the batch job with that drop."""
        role = self._submit_role("ArrivalRole", "events.amazonaws.com", self.batch_job)
        return events.CfnRule(
            self,
            "LandingArrival",
            name="cdp-batch-on-landing",
            description="Run the batch job when a landing drop is complete (its _READY marker arrives)",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [access.names.lake_bucket]},
                    "object": {"key": [{"wildcard": f"{LANDING_PREFIX}*/{READY_MARKER}"}]},
                },
            },
            targets=[
                events.CfnRule.TargetProperty(
                    id="BatchJob",
                    arn=self.queue.job_queue_arn,
                    role_arn=role.role_arn,
                    batch_parameters=events.CfnRule.BatchParametersProperty(
                        job_definition=self.batch_job.job_definition_arn, job_name="cdp-batch"
                    ),
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map={"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
                        input_template='{"Parameters": {"drop": "s3://<bucket>/<key>"}}',
                    ),
                )
            ],
        )

    def _drift_schedule(self) -> scheduler.CfnSchedule:
        role = self._submit_role("SchedulerRole", "scheduler.amazonaws.com", self.drift_job)
        # the schedule's target is encrypted with the platform key: the scheduler decrypts it with this
        # role, for the platform's schedules only (their encryption context)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptOwnSchedule",
                actions=["kms:Decrypt"],
                resources=[self._access.key.key_arn],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:scheduler:schedule-arn": self._access.arn(
                            "scheduler", "schedule/default/cdp-*"
                        )
                    }
                },
            )
        )
        return scheduler.CfnSchedule(
            self,
            "DriftSchedule",
            name="cdp-drift-daily",
            description="The drift job: publishes the drift metrics the loop's alarms read",
            schedule_expression=DRIFT_SCHEDULE,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            kms_key_arn=self._access.key.key_arn,
            target=scheduler.CfnSchedule.TargetProperty(
                arn="arn:aws:scheduler:::aws-sdk:batch:submitJob",
                role_arn=role.role_arn,
                input=Stack.of(self).to_json_string(
                    {
                        "JobName": "cdp-drift",
                        "JobQueue": self.queue.job_queue_arn,
                        "JobDefinition": self.drift_job.job_definition_arn,
                    }
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3),
            ),
        )

    def _submit_role(
        self, construct_id: str, service: str, definition: batch.EcsJobDefinition
    ) -> PlatformRole:
        """A role `service` assumes to submit `definition`'s job to the queue (and nothing else)."""
        role = PlatformRole(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal(service),
            description=f"{service}: submit one CDP job",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SubmitJob",
                actions=["batch:SubmitJob"],
                resources=[self.queue.job_queue_arn, definition.job_definition_arn],
            )
        )
        return role
