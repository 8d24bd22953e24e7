"""Governance: the CloudTrail trail (all regions, log-file validation, the platform key, an Object Lock
bucket, CloudWatch Logs), the SNS topics (fraud notices to customers, operator alarms; the platform key,
TLS only) and the AWS Backup plan of the DynamoDB tables and the lake.

Recovery points: DynamoDB tables also have point-in-time recovery (35 days, to the second); the backup plan
takes an hourly recovery point of every table and of the lake, kept `HOURLY_RETENTION_DAYS` days, and a
daily one at `BACKUP_HOUR_UTC`, kept `BACKUP_RETENTION_DAYS` days, in a vault encrypted with the platform
key and under a vault lock (`VAULT_LOCK_*`: no recovery point is deleted before its minimum retention or
kept past the maximum; after `VAULT_LOCK_GRACE_DAYS` the lock itself cannot be changed or removed). With
a DR vault (`infra.recovery`, required in prod) every recovery point is also copied to that vault in the
second region, kept as long as the original: recovery point objective 1 hour for a region loss, about 5
minutes within the region (point-in-time recovery of the tables; the lake hourly).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.nag_rules import suppress, suppress_no_replication
from infra.recovery import DisasterRecovery
from infra.roles import PlatformRole

TRAIL_NAME = "cdp-trail"
TRAIL_LOG_RETENTION_DAYS = 400  # PCI DSS 10.7: a year of audit trail, three months at hand
FRAUD_ALERTS_TOPIC = "cdp-fraud-alerts"
OPERATOR_ALARMS_TOPIC = "cdp-operator-alarms"
BACKUP_HOUR_UTC = 3
BACKUP_RETENTION_DAYS = 35  # daily recovery points
HOURLY_RETENTION_DAYS = 7  # hourly recovery points
VAULT_LOCK_MIN_RETENTION_DAYS = HOURLY_RETENTION_DAYS  # nothing is deleted sooner, by anyone
VAULT_LOCK_MAX_RETENTION_DAYS = 400  # nothing is kept longer (a year and a month at most)
VAULT_LOCK_GRACE_DAYS = 3  # after this the lock is compliance mode: it cannot be changed or removed
RECOVERY_POINT_OBJECTIVE = {
    "region loss": "1 hour (hourly recovery points copied to the DR region's vault)",
    "lake": "1 hour (hourly backup)",
    "tables": "5 minutes (point-in-time recovery)",
}


class GovernanceStack(Stack):
    """Trail, topics and backups; everything encrypted with the platform key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        lake: s3.IBucket,
        access_logs: s3.IBucket,
        tables: Sequence[dynamodb.ITable],
        disaster_recovery: DisasterRecovery | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.trail = self._trail(key, lake, access_logs)
        self.fraud_alerts = self._topic("FraudAlerts", FRAUD_ALERTS_TOPIC, "Fraud notices to customers", key)
        self.operator_alarms = self._topic(
            "OperatorAlarms", OPERATOR_ALARMS_TOPIC, "Drift, latency and error alarms to operators", key
        )
        self.backup_plan = self._backup(key, lake, tables, disaster_recovery)

    def _trail(self, key: kms.IKey, lake: s3.IBucket, access_logs: s3.IBucket) -> cloudtrail.Trail:
        bucket = s3.Bucket(
            self,
            "TrailLogs",
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                Duration.days(TRAIL_LOG_RETENTION_DAYS)
            ),
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="trail/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress_no_replication(bucket)
        log_group = logs.LogGroup(
            self,
            "TrailEvents",
            encryption_key=key,
            retention=logs.RetentionDays.THIRTEEN_MONTHS,
            removal_policy=RemovalPolicy.RETAIN,
        )
        trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=TRAIL_NAME,
            bucket=bucket,
            encryption_key=key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=log_group,
        )
        # data events: every object read and write of the lake (cardholder data's protected form)
        trail.add_s3_event_selector([cloudtrail.S3EventSelector(bucket=lake)])
        # CloudTrail encrypts with the platform key for this account's trails only
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsTrailLogs",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": (
                            f"arn:{self.partition}:cloudtrail:*:{self.account}:trail/*"
                        )
                    }
                },
            )
        )
        suppress(
            trail,
            "PCI.DSS.321-IAMNoInlinePolicy",
            "The CloudTrail construct's own delivery role, which it creates with one statement: "
            "logs:CreateLogStream and logs:PutLogEvents on this trail's log group; the construct offers no "
            "way to pass a role, and the role has the stack's permissions boundary.",
        )
        return trail

    def _topic(self, construct_id: str, name: str, purpose: str, key: kms.IKey) -> sns.Topic:
        topic = sns.Topic(
            self, construct_id, topic_name=name, display_name=purpose, master_key=key, enforce_ssl=True
        )
        # CloudWatch alarms publish to the operators' topic: the service may use the key for SNS only
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"CloudWatchPublishes{construct_id}",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{self.region}.amazonaws.com"}},
            )
        )
        return topic

    def _backup(
        self,
        key: kms.IKey,
        lake: s3.IBucket,
        tables: Sequence[dynamodb.ITable],
        disaster_recovery: DisasterRecovery | None,
    ) -> backup.BackupPlan:
        self.backup_vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name="cdp-backups",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
            lock_configuration=backup.LockConfiguration(
                min_retention=Duration.days(VAULT_LOCK_MIN_RETENTION_DAYS),
                max_retention=Duration.days(VAULT_LOCK_MAX_RETENTION_DAYS),
                changeable_for=Duration.days(VAULT_LOCK_GRACE_DAYS),
            ),
        )
        dr_vault = (
            backup.BackupVault.from_backup_vault_arn(self, "DrVault", disaster_recovery.vault_arn)
            if disaster_recovery is not None
            else None
        )
        plan = backup.BackupPlan(
            self, "Plan", backup_plan_name="cdp-hourly-daily", backup_vault=self.backup_vault
        )
        for name, schedule, days in (
            ("hourly", events.Schedule.cron(minute="0"), HOURLY_RETENTION_DAYS),
            ("daily", events.Schedule.cron(minute="0", hour=str(BACKUP_HOUR_UTC)), BACKUP_RETENTION_DAYS),
        ):
            copies = (
                [
                    backup.BackupPlanCopyActionProps(
                        destination_backup_vault=dr_vault, delete_after=Duration.days(days)
                    )
                ]
                if dr_vault is not None
                else None
            )
            plan.add_rule(
                backup.BackupPlanRule(
                    rule_name=name,
                    schedule_expression=schedule,
                    delete_after=Duration.days(days),
                    copy_actions=copies,
                )
            )
        role = PlatformRole(
            self,
            "BackupRole",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup: recovery points of the platform's tables and lake",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(f"service-role/{name}")
                for name in (
                    "AWSBackupServiceRolePolicyForBackup",
                    "AWSBackupServiceRolePolicyForRestores",
                    "AWSBackupServiceRolePolicyForS3Backup",
                    "AWSBackupServiceRolePolicyForS3Restore",
                )
            ],
        )
        suppress(
            role,
            "AwsSolutions-IAM4",
            "AWS Backup's service-role policies are maintained by AWS with the exact API set each resource "
            "type's backup and restore needs (DynamoDB, S3); the role is assumable by backup.amazonaws.com "
            "only, used by this plan's selection only, and capped by the permissions boundary.",
            applies_to=[
                {"regex": "/^Policy::arn:<AWS::Partition>:iam::aws:policy\\/service-role\\/AWSBackup.*$/g"}
            ],
        )
        plan.add_selection(
            "TablesAndLake",
            role=role,
            resources=[
                *(backup.BackupResource.from_dynamo_db_table(t) for t in tables),
                backup.BackupResource.from_arn(lake.bucket_arn),
            ],
        )
        return plan
