"""Recovery in AWS as the README promises it: in prod every hourly and daily recovery point is copied to
the DR region's vault, and the card-verification key is replicated there; without the DR vault a prod
synth fails naming the value. (The plan, the vault lock and the multi-Region key of a dev synth are
checked with the other runtime stacks in tests/test_infra_runtime.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra_synth import CONTEXT, resources

DR_VAULT = "arn:aws:backup:eu-central-1:123456789012:backup-vault:cdp-dr"


def _prod_templates() -> dict[str, dict[str, Any]]:
    """The data plane and governance stacks of a prod synth (no rule packs: those run on the full app)."""
    import aws_cdk as cdk

    from cdp.aws_resources import AwsResources
    from cdp.settings import Settings
    from infra.data_plane import DataPlaneStack
    from infra.governance import GovernanceStack
    from infra.recovery import disaster_recovery

    names = AwsResources.from_settings(Settings(lake_bucket="cdp-lake-test", aws_region="eu-west-1"))
    recovery = disaster_recovery(DR_VAULT, "prod", names.region)
    app = cdk.App()
    data = DataPlaneStack(app, "Data", names=names, quick_sight=False, disaster_recovery=recovery)
    GovernanceStack(
        app,
        "Governance",
        key=data.key,
        lake=data.lake,
        access_logs=data.access_logs,
        tables=[*data.tables.values(), data.audit_table],
        disaster_recovery=recovery,
    )
    assembly = app.synth()
    return {name: assembly.get_stack_by_name(name).template for name in ("Data", "Governance")}


@pytest.fixture(scope="module")
def prod() -> dict[str, dict[str, Any]]:
    return _prod_templates()


def test_in_prod_every_recovery_point_is_copied_to_the_dr_vault_and_kept_as_long(prod) -> None:
    (plan,) = resources(prod["Governance"], "AWS::Backup::BackupPlan").values()
    rules = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert {r["RuleName"] for r in rules} == {"hourly", "daily"}
    for rule in rules:
        (copy,) = rule["CopyActions"]
        assert copy["DestinationBackupVaultArn"] == DR_VAULT
        assert copy["Lifecycle"] == rule["Lifecycle"], rule["RuleName"]


def test_in_prod_the_card_verification_key_is_replicated_to_the_dr_region(prod) -> None:
    (card_key,) = resources(prod["Data"], "AWS::PaymentCryptography::Key").values()
    assert card_key["Properties"]["ReplicationRegions"] == ["eu-central-1"]
    (key,) = resources(prod["Data"], "AWS::KMS::Key").values()
    assert key["Properties"]["MultiRegion"] is True


def test_a_prod_synth_without_a_dr_vault_fails_naming_it() -> None:
    import aws_cdk as cdk

    from cdp.settings import Settings
    from infra.app import build_stacks

    context = {k: v for k, v in CONTEXT.items() if k not in ("stagingAccount", "prodAccount")}
    app = cdk.App(context={**context, "environment": "prod"})
    with pytest.raises(ValueError, match="missing CDK context 'drBackupVaultArn'"):
        build_stacks(app, Settings(aws_region="eu-west-1"))


def test_a_pipeline_that_deploys_prod_without_its_dr_vault_fails_naming_it() -> None:
    import aws_cdk as cdk

    from cdp.settings import Settings
    from infra.app import build_stacks

    context = {k: v for k, v in CONTEXT.items() if k != "prodDrBackupVaultArn"}
    with pytest.raises(ValueError, match="missing CDK context 'prodDrBackupVaultArn'"):
        build_stacks(cdk.App(context=context), Settings(aws_region="eu-west-1"))


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        ("cdp-dr", "must be a backup vault ARN"),
        ("arn:aws:s3:::cdp-dr", "must be a backup vault ARN"),
        ("arn:aws:backup:eu-west-1:123456789012:backup-vault:cdp-dr", "another region than eu-west-1"),
    ],
)
def test_a_dr_vault_must_be_a_backup_vault_in_another_region(arn: str, problem: str) -> None:
    from infra.recovery import disaster_recovery

    with pytest.raises(ValueError, match=problem):
        disaster_recovery(arn, "dev", "eu-west-1")


def test_dev_may_omit_the_dr_vault_and_then_copies_nothing() -> None:
    from infra.recovery import disaster_recovery

    assert disaster_recovery(None, "dev", "eu-west-1") is None
    assert disaster_recovery(DR_VAULT, "dev", "eu-west-1").region == "eu-central-1"
