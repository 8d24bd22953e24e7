"""AWS adapter of the identity port: the caller is its IAM principal, its roles come from a configured map.

`sts:GetCallerIdentity` names the principal (an IAM user, or an assumed role's session). The map
(`CDP_IAM_ROLE_MAP`, JSON) gives roles per ARN: an entry for the exact ARN, or, for an assumed-role
session `arn:aws:sts::<acct>:assumed-role/<Role>/<session>`, an entry for its role
`arn:aws:iam::<acct>:role/<Role>`. A principal in neither has no role. The identity's id is the full ARN,
so two people assuming the same role are still two identities (separation of duties holds). In AWS every
platform service runs as its own IAM role, so a service's identity is the current principal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cdp.security.errors import NotAuthenticated
from cdp.security.identity.port import Identity, IdentityAdminError
from cdp.security.policy import ROLES

if TYPE_CHECKING:
    from cdp.settings import Settings

_ASSUMED = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")


def role_arn(principal_arn: str) -> str | None:
    """The IAM role ARN behind an assumed-role session ARN (None for other principals)."""
    m = _ASSUMED.match(principal_arn)
    return f"arn:{m[1]}:iam::{m[2]}:role/{m[3]}" if m else None


class IamIdentityProvider:
    """`IdentityProvider` over STS (`sts` is a boto3 STS client)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> IamIdentityProvider:
        """STS in `settings.aws_region`, roles from `CDP_IAM_ROLE_MAP`."""
        from cdp.aws_clients import aws_client

        return cls(aws_client(settings, "sts"), settings.iam_role_map)

    def __init__(self, sts: Any, role_map: Mapping[str, Sequence[str]]) -> None:
        unknown = sorted({r for roles in role_map.values() for r in roles} - ROLES)
        if unknown:
            raise IdentityAdminError(f"CDP_IAM_ROLE_MAP names unknown roles: {', '.join(unknown)}")
        self._sts = sts
        self._map = {arn: tuple(sorted(set(roles))) for arn, roles in role_map.items()}

    def roles_of(self, principal_arn: str) -> tuple[str, ...]:
        roles = set(self._map.get(principal_arn, ()))
        behind = role_arn(principal_arn)
        if behind is not None:
            roles |= set(self._map.get(behind, ()))
        return tuple(sorted(roles))

    def current(self) -> Identity:
        try:
            arn = str(self._sts.get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            raise NotAuthenticated("no AWS identity: sts:GetCallerIdentity failed") from None
        return Identity(arn, arn, self.roles_of(arn), kind="iam")

    def service(self, name: str) -> Identity:
        return self.current()
