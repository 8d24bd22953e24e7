"""Governance: the CloudTrail trail (all regions, log-file validation, the platform key, an Object Lock
bucket, CloudWatch Logs), the SNS topics (fraud notices to customers, operator alarms; the platform key,
TLS only) and the AWS Backup plan of the DynamoDB tables and the lake.

Recovery points: DynamoDB tables also have point-in-time recovery (35 days, to the second); the backup plan
takes a daily recovery point of every table and of the lake at `BACKUP_HOUR_UTC`, kept
`BACKUP_RETENTION_DAYS` days in a vault encrypted with the platform key: recovery point objective 24 hours
for the lake, 5 minutes for the tables (PITR).
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
from infra.roles import PlatformRole

TRAIL_NAME = "cdp-trail"
TRAIL_LOG_RETENTION_DAYS = 400  # PCI DSS 10.7: a year of audit trail, three months at hand
FRAUD_ALERTS_TOPIC = "cdp-fraud-alerts"
OPERATOR_ALARMS_TOPIC = "cdp-operator-alarms"
BACKUP_HOUR_UTC = 3
BACKUP_RETENTION_DAYS = 35
RECOVERY_POINT_OBJECTIVE = {"lake": "24 hours (daily backup)", "tables": "5 minutes (point-in-time recovery)"}


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
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.trail = self._trail(key, lake, access_logs)
        self.fraud_alerts = self._topic("FraudAlerts", FRAUD_ALERTS_TOPIC, "Fraud notices to customers", key)
        self.operator_alarms = self._topic(
            "OperatorAlarms", OPERATOR_ALARMS_TOPIC, "Drift, latency and error alarms to operators", key
        )
        self.backup_plan = self._backup(key, lake, tables)

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
        self, key: kms.IKey, lake: s3.IBucket, tables: Sequence[dynamodb.ITable]
    ) -> backup.BackupPlan:
        vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name="cdp-backups",
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        plan = backup.BackupPlan(self, "Plan", backup_plan_name="cdp-daily", backup_vault=vault)
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="daily",
                schedule_expression=events.Schedule.cron(minute="0", hour=str(BACKUP_HOUR_UTC)),
                delete_after=Duration.days(BACKUP_RETENTION_DAYS),
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
