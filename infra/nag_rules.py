"""cdk-nag: the AwsSolutions and PCI DSS 3.2.1 packs on the whole app, and the findings we accept, each
with its reason (the PCI pack encodes PCI DSS 3.2.1, superseded by 4.0.1: a lint, not a compliance claim).

Also the one list of IAM actions granted on `Resource: "*"`: actions that have no resource-level
permissions in IAM. The tests fail on any other statement with a `*` resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aspects, Stage
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, PCIDSS321Checks
from constructs import IConstruct

STAR_RESOURCE_ACTIONS: dict[str, str] = {
    "ecr:GetAuthorizationToken": "returns a registry login token; IAM has no resource for it",
    "cloudwatch:PutMetricData": "metrics have no ARN; limited to SageMaker's namespaces by a condition",
    "sagemaker:ListModelPackages": "a list call has no resource type; reading a version needs Describe*",
    "ec2:CreateNetworkInterface": "Lambda in a VPC: the interface's ARN is not known before it exists",
    "ec2:DescribeNetworkInterfaces": "a describe call has no resource type",
    "ec2:DeleteNetworkInterface": "Lambda in a VPC: interfaces it created, named by AWS",
    "ec2:AssignPrivateIpAddresses": "Lambda in a VPC: addresses on interfaces named by AWS",
    "ec2:UnassignPrivateIpAddresses": "Lambda in a VPC: addresses on interfaces named by AWS",
    "dynamodb:ListStreams": "a list call has no resource type (reading a stream is granted on its ARN)",
}
"""Actions allowed on `*` (documented: they support no resource-level permission)."""


def suppress(
    construct: IConstruct,
    rule_id: str,
    reason: str,
    applies_to: Sequence[str | Mapping[str, str]] | None = None,
) -> None:
    """Accept finding `rule_id` on `construct` and its children, for `reason`; with `applies_to`, only
    the listed findings (exact strings, or `{"regex": "/.../g"}` over strings such as
    `Resource::arn:<AWS::Partition>:logs:...:*`)."""
    suppression = NagPackSuppression(
        id=rule_id, reason=reason, applies_to=list(applies_to) if applies_to else None
    )
    NagSuppressions.add_resource_suppressions(construct, [suppression], apply_to_children=True)


RULE_PACKS = ("AwsSolutions", "PCI.DSS.321")
"""The packs run at synth (their report files are `<pack>-<stack>-NagReport.csv` in the assembly)."""


def apply_checks(scope: Stage) -> None:
    """Run both packs over every stack of `scope` at synth (findings become annotations)."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))
    Aspects.of(scope).add(PCIDSS321Checks(verbose=True))


NO_REPLICATION_REASON = (
    "Disaster recovery is by AWS Backup rather than bucket replication: the lake and every table have "
    "hourly and daily recovery points in a locked vault, copied to the DR region's vault in prod "
    "(infra.governance, infra.recovery), and the bucket is versioned; PCI DSS 10.5.3 asks for backups of "
    "log and data, which these are, and replication would copy deletions and overwrites as they happen."
)


def suppress_no_replication(bucket: IConstruct) -> None:
    """Accept the PCI pack's replication finding on `bucket` (see `NO_REPLICATION_REASON`)."""
    suppress(bucket, "PCI.DSS.321-S3BucketReplicationEnabled", NO_REPLICATION_REASON)
