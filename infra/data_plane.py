"""The data plane: the platform's KMS key, S3 lake, Glue database, Athena workgroups (the platform's and
the analysts', with the analyst role), the dashboards' QuickSight data source and datasets, Kinesis stream,
DynamoDB tables (the audit log's among them) and the audit checkpoints' Object Lock bucket, every one
encrypted with the customer-managed key. Names come from `cdp.aws_resources`, as the adapters' do."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_paymentcryptography as paymentcryptography
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdp.aws_resources import AwsResources
from cdp.oltp.records import TRANSACTION
from cdp.security.audit.dynamodb import PARTITION_KEY as AUDIT_PARTITION_KEY
from cdp.security.audit.dynamodb import SORT_KEY as AUDIT_SORT_KEY
from infra.analyst_access import AnalystAccess
from infra.nag_rules import suppress, suppress_no_replication
from infra.quicksight import QuickSightDatasets
from infra.recovery import DisasterRecovery
from infra.table_specs import table_specs

# How long each audit checkpoint is locked (compliance mode: the period cannot be shortened); seven years,
# a common record-keeping period for banks' audit evidence.
AUDIT_CHECKPOINT_RETENTION_DAYS = 7 * 365


class DataPlaneStack(Stack):
    """Storage and streaming. Stateful resources are retained when the stack is deleted."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: AwsResources,
        quick_sight: bool = True,
        disaster_recovery: DisasterRecovery | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = kms.Key(
            self,
            "PlatformKey",
            alias=names.kms_alias,
            description="CDP: wraps per-customer data keys; encrypts the lake, stream, tables and builds",
            enable_key_rotation=True,
            # a multi-Region primary: a replica in the DR region (`aws kms replicate-key`, the DR region's
            # own resource) decrypts the same data keys and restored backups. CloudFormation refuses to
            # change MultiRegion on an existing key: a stack deployed with a single-Region key moves to a
            # new key (and re-wraps its data keys) rather than updating this property in place
            multi_region=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write to SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(400))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress(
            self.access_logs,
            "PCI.DSS.321-S3DefaultEncryptionKMS",
            "S3 server access logging delivers only to buckets encrypted with SSE-S3 (AES-256), not SSE-KMS; "
            "the logs hold request metadata, no customer data; the bucket is private, TLS-only, versioned.",
        )
        suppress_no_replication(self.access_logs)
        self.lake = s3.Bucket(
            self,
            "Lake",
            bucket_name=names.lake_bucket,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="lake/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        suppress_no_replication(self.lake)
        # S3 events to EventBridge (a landing drop's arrival starts the batch job, infra.jobs); set on the
        # resource itself, so no notification-handler Lambda is created
        self.lake.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        self.glue_database = glue.CfnDatabase(
            self,
            "Catalog",
            catalog_id=self.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=names.glue_database, description="CDP lake tables (hive partitions year/month)"
            ),
        )
        catalog_encryption = glue.CfnDataCatalogEncryptionSettings
        catalog_encryption(
            self,
            "CatalogEncryption",
            catalog_id=self.account,
            data_catalog_encryption_settings=catalog_encryption.DataCatalogEncryptionSettingsProperty(
                encryption_at_rest=catalog_encryption.EncryptionAtRestProperty(
                    catalog_encryption_mode="SSE-KMS", sse_aws_kms_key_id=self.key.key_arn
                ),
                connection_password_encryption=catalog_encryption.ConnectionPasswordEncryptionProperty(
                    return_connection_password_encrypted=True, kms_key_id=self.key.key_arn
                ),
            ),
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=names.workgroup,
            description="CDP queries; results encrypted with the platform key",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=names.athena_results,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.key.key_arn
                    ),
                ),
            ),
        )
        self.analysts = AnalystAccess(self, "Analysts", names=names, key=self.key, lake=self.lake)
        # the dashboards' QuickSight data source and datasets (an account with QuickSight subscribed)
        self.quick_sight = (
            QuickSightDatasets(
                self, "QuickSight", names=names, key=self.key, lake=self.lake, workgroup=self.workgroup
            )
            if quick_sight
            else None
        )
        self.stream = kinesis.Stream(
            self,
            "Transactions",
            stream_name=names.stream,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=self.key,
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            retention_period=Duration.hours(24),
        )
        suppress(
            self.stream,
            "AwsSolutions-KDS3",
            "Transactions carry protected customer data: the stream uses the platform's own key (rotation, "
            "key policy, crypto-shredding design) rather than the AWS-managed aws/kinesis key.",
        )
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in table_specs():
            table = dynamodb.Table(
                self,
                f"Table-{spec.suffix}",
                table_name=names.table(spec.suffix),
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(
                    dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                    if spec.sort_key
                    else None
                ),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                time_to_live_attribute=spec.ttl_attribute,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=self.key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                deletion_protection=True,
                removal_policy=RemovalPolicy.RETAIN,
                # core banking's new transactions feed the extraction Lambda (infra.stream_functions)
                stream=dynamodb.StreamViewType.NEW_IMAGE if spec.suffix == TRANSACTION.name else None,
            )
            self.tables[spec.suffix] = table
        self.audit_table = _audit_table(self, names.audit_table, self.key)
        self.audit_checkpoints = _audit_checkpoint_bucket(
            self, names.audit_checkpoint_bucket, self.key, self.access_logs
        )
        suppress_no_replication(self.audit_checkpoints)
        self.transactions_table = self.tables[TRANSACTION.name]
        if names.card_verification_alias:
            self.card_verification_key = _card_verification_key(
                self,
                names.card_verification_alias,
                replicate_to=[disaster_recovery.region] if disaster_recovery is not None else [],
            )


def _audit_table(scope: Construct, name: str, key: kms.IKey) -> dynamodb.Table:
    """The audit log's records (`cdp.security.audit.dynamodb`): partition `log` (S), sort `seq` (N).
    Roles that audit get append-only rights on it (`grant_audit_append`)."""
    return dynamodb.Table(
        scope,
        "AuditLog",
        table_name=name,
        partition_key=dynamodb.Attribute(name=AUDIT_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=AUDIT_SORT_KEY, type=dynamodb.AttributeType.NUMBER),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


def _audit_checkpoint_bucket(
    scope: Construct, name: str, key: kms.IKey, access_logs: s3.IBucket
) -> s3.Bucket:
    """The audit log's signed checkpoints (`cdp.security.audit.checkpoints.s3`): write-once objects under
    Object Lock in compliance mode, so no one (root included) deletes or overwrites one before its retention
    ends. Roles that audit may put, get and list (`grant_audit_checkpoints`)."""
    return s3.Bucket(
        scope,
        "AuditCheckpoints",
        bucket_name=name,
        object_lock_enabled=True,
        object_lock_default_retention=s3.ObjectLockRetention.compliance(
            Duration.days(AUDIT_CHECKPOINT_RETENTION_DAYS)
        ),
        versioned=True,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix="audit-checkpoints/",
        removal_policy=RemovalPolicy.RETAIN,
    )


def _card_verification_key(
    scope: Construct, alias: str, replicate_to: list[str]
) -> paymentcryptography.CfnKey:
    """The issuer's CVK in AWS Payment Cryptography (non-exportable, generate + verify only), under the
    alias core banking's card verifier addresses, replicated to the `replicate_to` regions (the DR region:
    card verification goes on there). A bank with cards in circulation imports its existing CVK instead
    (their CVVs were computed under it) and sets `CDP_CARD_VERIFICATION_KEY_ARN` to its ARN; then no key
    is created here."""
    key = paymentcryptography.CfnKey(
        scope,
        "CardVerificationKey",
        exportable=False,
        enabled=True,
        key_attributes=paymentcryptography.CfnKey.KeyAttributesProperty(
            key_algorithm="TDES_2KEY",
            key_class="SYMMETRIC_KEY",
            key_usage="TR31_C0_CARD_VERIFICATION_KEY",
            key_modes_of_use=paymentcryptography.CfnKey.KeyModesOfUseProperty(generate=True, verify=True),
        ),
        replication_regions=list(replicate_to) or None,
    )
    key.apply_removal_policy(RemovalPolicy.RETAIN)
    paymentcryptography.CfnAlias(
        scope, "CardVerificationKeyAlias", alias_name=alias, key_arn=key.attr_key_identifier
    )
    return key
