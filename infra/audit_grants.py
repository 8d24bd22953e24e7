"""What a role that writes to the platform audit log needs (`cdp.security.audit`), and nothing more.

Three grants, each scoped to the audit log's own resources:
- append-only rights on the audit table (`AUDIT_APPEND_ACTIONS`);
- put, get and list of the signed checkpoints under the checkpoint bucket's prefix (no delete);
- the two audit keys: their entries of the data-key table (`dynamodb:LeadingKeys`) and their unwrap with
  the platform key (their encryption context's `use` only).
Used by the promotion gate's CodeBuild projects and by the drift job (which switches challengers).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from cdp.security.audit.checkpoints.s3 import PREFIX as CHECKPOINT_PREFIX
from cdp.security.audit.keys import AUDIT_KEY_IDS, AUDIT_KEY_USES

# What appending to the audit log takes (cdp/security/audit/dynamodb.py): the transaction's conditional puts
# and its check of the previous record, the head read, the ordered reads of verify. No UpdateItem,
# DeleteItem or BatchWriteItem: records cannot be edited in place or removed with these rights (an
# unconditional PutItem over a record is still possible for the role, and `verify()` reports it).
# Transactions are authorised per contained operation; there is no separate transaction permission.
AUDIT_APPEND_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
)

CHECKPOINT_OBJECTS_FINDING = {
    "regex": "/^Resource::.*AuditCheckpoints[0-9A-F]+\\.?Arn.*\\/audit-checkpoints\\/\\*$/g"
}
"""The cdk-nag wildcard finding of the checkpoint objects grant (one object per checkpoint)."""
CHECKPOINT_OBJECTS_REASON = (
    "Audit checkpoints are one object per checkpoint, named by its record count, under the checkpoint "
    "bucket's audit-checkpoints/ prefix (write-once: Object Lock in compliance mode)."
)


def _add(grantee: iam.IGrantable, statement: iam.PolicyStatement) -> None:
    grantee.grant_principal.add_to_principal_policy(statement)


def grant_audit_append(grantee: iam.IGrantable, audit_table: dynamodb.ITable) -> None:
    """Append-only rights on the audit table."""
    _add(
        grantee,
        iam.PolicyStatement(
            sid="AuditAppendOnly", actions=list(AUDIT_APPEND_ACTIONS), resources=[audit_table.table_arn]
        ),
    )


def grant_audit_checkpoints(grantee: iam.IGrantable, bucket: s3.IBucket) -> None:
    """Write and read the audit log's signed checkpoints (`cdp.security.audit.checkpoints.s3`): put (new
    objects only; Object Lock keeps every version), get and list. No delete. The caller accepts the
    objects' wildcard finding (`CHECKPOINT_OBJECTS_FINDING`) on the role."""
    _add(
        grantee,
        iam.PolicyStatement(
            sid="AuditCheckpointObjects",
            actions=["s3:PutObject", "s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{CHECKPOINT_PREFIX}*")],
        ),
    )
    _add(
        grantee,
        iam.PolicyStatement(
            sid="AuditCheckpointList",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{CHECKPOINT_PREFIX}*"]}},
        ),
    )


def grant_audit_keys(grantee: iam.IGrantable, data_keys: dynamodb.ITable, key: kms.IKey) -> None:
    """Load the audit keys (`cdp.security.audit.keys.load_audit_keys`): read their two entries of the
    data-key table, unwrap them with the platform key (their encryption context only). Creating them is
    not granted: they exist once anything has audited with an administrator's rights."""
    _add(
        grantee,
        iam.PolicyStatement(
            sid="AuditKeyEntries",
            actions=["dynamodb:GetItem"],
            resources=[data_keys.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": list(AUDIT_KEY_IDS)}},
        ),
    )
    _add(
        grantee,
        iam.PolicyStatement(
            sid="AuditKeyUnwrap",
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:EncryptionContext:use": list(AUDIT_KEY_USES)}},
        ),
    )
    _add(
        grantee,
        iam.PolicyStatement(sid="PlatformKeyArn", actions=["kms:DescribeKey"], resources=[key.key_arn]),
    )


@dataclass(frozen=True)
class AuditResources:
    """The audit log's resources (the data plane's), for a stack whose roles audit."""

    table: dynamodb.ITable
    checkpoints: s3.IBucket
    data_keys: dynamodb.ITable
    key: kms.IKey


def grant_audit(grantee: iam.IGrantable, audit: AuditResources) -> None:
    """All three: what `Backends.audit.append` takes in AWS."""
    grant_audit_append(grantee, audit.table)
    grant_audit_checkpoints(grantee, audit.checkpoints)
    grant_audit_keys(grantee, audit.data_keys, audit.key)
