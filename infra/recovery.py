"""Disaster recovery settings of the app: the second region's backup vault, from the CDK context.

`drBackupVaultArn` names a vault in another region (the bank's DR region, same account, locked by its own
vault lock and encrypted with that region's key); AWS Backup copies every recovery point of the plan
there, and the card-verification key is replicated to that region. A prod environment
(`environment=prod`, as the pipeline's prod deploy passes it) must have one: its synth fails naming the
value otherwise. A dev or staging environment may omit it: then the recovery points stay in the primary
region (no copy) and the card key is not replicated.

An app whose pipeline deploys to prod (`prodAccount`) takes the prod account's vault as
`prodDrBackupVaultArn` (required then) and hands it to the prod deploy as `drBackupVaultArn`; the
pipeline account's own stacks use only their own `drBackupVaultArn`, if any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DR_VAULT_CONTEXT = "drBackupVaultArn"
PROD_DR_VAULT_CONTEXT = "prodDrBackupVaultArn"
ENVIRONMENT_CONTEXT = "environment"
PROD = "prod"
_VAULT_ARN = re.compile(
    r"^arn:(aws[a-z-]*):backup:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):backup-vault:([A-Za-z0-9_.-]{2,50})$"
)


@dataclass(frozen=True)
class DisasterRecovery:
    """The DR region's backup vault (its ARN and region)."""

    vault_arn: str
    region: str

    @classmethod
    def parse(cls, vault_arn: str, primary_region: str, name: str = DR_VAULT_CONTEXT) -> DisasterRecovery:
        """The vault ARN from context `name`, checked: a backup vault in another region than the stacks'."""
        match = _VAULT_ARN.match(vault_arn)
        if match is None:
            raise ValueError(
                f"CDK context {name!r} must be a backup vault ARN "
                "(arn:aws:backup:<region>:<account>:backup-vault:<name>)"
            )
        region = match.group(2)
        if region == primary_region:
            raise ValueError(
                f"CDK context {name!r} must name a vault in another region than {primary_region}"
            )
        return cls(vault_arn, region)


def disaster_recovery(
    vault_arn: str | None, environment: str, primary_region: str
) -> DisasterRecovery | None:
    """This synth's DR vault, or None (dev/staging without one); a prod environment without one fails
    naming `drBackupVaultArn`."""
    if vault_arn:
        return DisasterRecovery.parse(vault_arn, primary_region, DR_VAULT_CONTEXT)
    if environment == PROD:
        raise ValueError(
            f"missing CDK context {DR_VAULT_CONTEXT!r}: a prod environment copies its backups to a vault in "
            f"the DR region (-c {DR_VAULT_CONTEXT}=arn:aws:backup:<region>:<account>:backup-vault:<name>)"
        )
    return None


def prod_disaster_recovery(vault_arn: str | None, primary_region: str) -> DisasterRecovery:
    """The vault the pipeline hands to its prod deploy; missing fails naming `prodDrBackupVaultArn`."""
    if not vault_arn:
        raise ValueError(
            f"missing CDK context {PROD_DR_VAULT_CONTEXT!r}: the pipeline deploys prod, whose backups are "
            f"copied to a vault in the DR region (-c {PROD_DR_VAULT_CONTEXT}=arn:aws:backup:...)"
        )
    return DisasterRecovery.parse(vault_arn, primary_region, PROD_DR_VAULT_CONTEXT)
