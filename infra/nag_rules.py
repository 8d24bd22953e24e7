"""cdk-nag: the AwsSolutions checks on the whole app, and the few findings we accept, each with its reason.

Also the one list of IAM actions granted on `Resource: "*"`: actions that have no resource-level
permissions in IAM. The tests fail on any other statement with a `*` resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aspects, Stage
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions
from constructs import IConstruct

STAR_RESOURCE_ACTIONS: dict[str, str] = {
    "ecr:GetAuthorizationToken": "returns a registry login token; IAM has no resource for it",
    "cloudwatch:PutMetricData": "metrics have no ARN; limited to SageMaker's namespaces by a condition",
    "sagemaker:ListModelPackages": "a list call has no resource type; reading a version needs Describe*",
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


def apply_checks(scope: Stage) -> None:
    """Run the AwsSolutions pack over every stack of `scope` at synth (findings become annotations)."""
    Aspects.of(scope).add(AwsSolutionsChecks(verbose=True))
