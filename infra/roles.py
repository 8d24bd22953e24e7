"""The platform's IAM roles: grants in a customer-managed policy of the role's own, under a boundary.

`PlatformRole` is an `iam.Role` whose grants (its own `add_to_policy` and every CDK `grant_*` on it) land
in one `AWS::IAM::ManagedPolicy` attached to that role only, not in an inline policy (PCI DSS 7.1.2: access
reviewable as managed, versioned policies). `apply_permissions_boundary` puts the same boundary on every
role of a stack: whatever a grant says, no role of the app may manage IAM, leave its boundary, switch off
the trail or schedule the deletion of a key.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag_rules import suppress

BOUNDARY_DENIED_ACTIONS = (
    # identity: no role of the app creates, edits or escapes roles, users or policies
    "iam:CreateUser",
    "iam:CreateRole",
    "iam:CreateAccessKey",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
    "iam:UpdateAssumeRolePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    # evidence and keys: the trail keeps logging, keys are not disabled or deleted
    "cloudtrail:StopLogging",
    "cloudtrail:DeleteTrail",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:PutKeyPolicy",
    # storage guardrails: no public buckets, no lifting of Object Lock
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketObjectLockConfiguration",
    "organizations:LeaveOrganization",
)
"""What the boundary denies to every role of the app (a boundary caps; it grants nothing)."""

BOUNDARY_ID = "PermissionsBoundary"


class PlatformRole(iam.Role):
    """A role whose grants go to one customer-managed policy attached to it alone.

    With `key_services` (e.g. `("s3",)`), every KMS statement granted to the role without a condition,
    the CDK's own grants included (artifact buckets, encrypted projects), is limited to those services by
    `kms:ViaService`: such a role cannot call KMS directly, so it cannot unwrap the per-customer data keys
    the platform key protects. Statements with their own condition (an encryption context) are kept."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key_services: Sequence[str] = (), **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._grants: iam.ManagedPolicy | None = None
        self._key_services = tuple(key_services)

    @property
    def grants_policy(self) -> iam.ManagedPolicy | None:
        """The managed policy holding the role's grants (None until the first grant)."""
        return self._grants

    def add_to_principal_policy(self, statement: iam.PolicyStatement) -> iam.AddToPrincipalPolicyResult:
        if self._grants is None:
            self._grants = iam.ManagedPolicy(
                self, "Grants", description=f"Grants of {self.node.path} only", roles=[self]
            )
        if self._key_services and _unconditioned_kms(statement):
            region = Stack.of(self).region
            statement.add_condition(
                "StringEquals",
                {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in self._key_services]},
            )
        self._grants.add_statements(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True, policy_dependable=self._grants)


def _unconditioned_kms(statement: iam.PolicyStatement) -> bool:
    """An Allow of KMS actions with no condition at all."""
    kms_actions = any(action.startswith("kms:") for action in statement.actions)
    return statement.effect == iam.Effect.ALLOW and kms_actions and not statement.conditions


def apply_permissions_boundary(stack: Stack) -> iam.ManagedPolicy:
    """Create the stack's boundary policy and set it on every role of the stack (CDK-made ones too)."""
    boundary = iam.ManagedPolicy(
        stack,
        BOUNDARY_ID,
        description="CDP permissions boundary: caps every role of the app (grants nothing by itself)",
        statements=[
            iam.PolicyStatement(
                sid="CapAtGrants", actions=["*"], resources=["*"]
            ),  # the role's own grants decide within the cap
            iam.PolicyStatement(
                sid="DenyGuardrailChanges",
                effect=iam.Effect.DENY,
                actions=list(BOUNDARY_DENIED_ACTIONS),
                resources=["*"],
            ),
        ],
    )
    suppress(
        boundary,
        "AwsSolutions-IAM5",
        "A permissions boundary is an upper limit, not a grant: 'Allow * on *' intersected with each role's "
        "own least-privilege policy leaves that policy, and the boundary's Deny removes IAM, trail, key "
        "deletion and bucket-policy changes from every role whatever it is granted.",
        applies_to=["Action::*", "Resource::*"],
    )
    for rule in (
        "PCI.DSS.321-IAMPolicyNoStatementsWithAdminAccess",
        "PCI.DSS.321-IAMPolicyNoStatementsWithFullAccess",
    ):
        suppress(
            boundary,
            rule,
            "This policy is only ever a permissions boundary (no principal has it as a grant): its Allow is "
            "the cap each role's least-privilege grants are intersected with, and its Deny statement takes "
            "IAM, trail, key-deletion and bucket-policy changes away from every role of the app.",
        )
    iam.PermissionsBoundary.of(stack).apply(boundary)
    return boundary
