"""The CDK app: four stacks built from the platform settings and the CDK context, checked by cdk-nag.

Context (`cdk synth -c key=value`, or `python -m infra -c key=value`):
- `connectionArn` (required): the CodeConnections connection to the Git host;
- `repository` (required): `owner/name` of the platform's repository;
- `branch` (default `main`), `endpointInstanceType` (default `ml.m5.large`);
- `environment` (default `dev`; the pipeline passes each deploy its target's name, `staging` or `prod`) and
  `drBackupVaultArn`: the DR region's backup vault the backups are copied to (required when `environment`
  is `prod`); `prodDrBackupVaultArn`: the prod account's, handed to the pipeline's prod deploy (required
  with `prodAccount`); see `infra.recovery`;
- `quickSight` (default `true`): `false` leaves the dashboards' QuickSight data source and datasets out
  (for an account without a QuickSight subscription, where their creation would fail);
- `account` (optional): the account the stacks are for (dev, or the target of a pipeline deploy);
- `stagingAccount` and `prodAccount` (optional, both or neither): the pipeline then deploys the app to
  staging, waits for a manual approval, then deploys to prod (each account bootstrapped with
  `cdk bootstrap --trust <pipeline account>`).
Resource names come from the `CDP_*` settings through `cdp.aws_resources` (`CDP_LAKE_BUCKET`,
`CDP_STREAM_NAME`, `CDP_KMS_KEY_ID`, `CDP_DYNAMODB_TABLE_PREFIX`, `CDP_AUDIT_TABLE`,
`CDP_AUDIT_CHECKPOINT_BUCKET`, `CDP_EVENT_BUS_NAME`, `CDP_ATHENA_ANALYST_WORKGROUP`, `CDP_AWS_REGION`), the
module the AWS adapters name their resources with, so the app and the adapters agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk

from cdp.aws_resources import DATA_KEYS_TABLE, AwsResources
from cdp.settings import Settings, get_settings
from infra.audit_grants import AuditResources
from infra.data_plane import DataPlaneStack
from infra.delivery import DeliveryStack, DeployTarget, SourceRepository
from infra.governance import GovernanceStack
from infra.ml_platform import MlPlatformStack
from infra.monitoring_loop import MonitoringLoopStack
from infra.nag_rules import apply_checks
from infra.recovery import (
    DR_VAULT_CONTEXT,
    ENVIRONMENT_CONTEXT,
    PROD,
    PROD_DR_VAULT_CONTEXT,
    disaster_recovery,
    prod_disaster_recovery,
)
from infra.roles import apply_permissions_boundary
from infra.runtime import RuntimeStack
from monitoring.slo import Objectives

REQUIRED_CONTEXT = ("connectionArn", "repository")
# Cross-stack references as CloudFormation exports (the producer stack protects what others import).
DEFAULT_CONTEXT = {"@aws-cdk/core:defaultCrossStackReferences": "strong"}


@dataclass(frozen=True)
class CdpStacks:
    """The app's stacks, for tests and for `cdk deploy <stack>`."""

    data: DataPlaneStack
    ml: MlPlatformStack
    delivery: DeliveryStack
    loop: MonitoringLoopStack
    governance: GovernanceStack
    runtime: RuntimeStack

    def all(self) -> list[cdk.Stack]:
        return [self.data, self.ml, self.delivery, self.loop, self.governance, self.runtime]


def _context(app: cdk.App, name: str, default: str | None = None) -> str:
    value = app.node.try_get_context(name)
    if value in (None, ""):
        if default is None:
            raise ValueError(
                f"missing CDK context {name!r}: pass -c {name}=... (required: {REQUIRED_CONTEXT})"
            )
        return default
    return str(value)


def _deploy_targets(app: cdk.App) -> tuple[DeployTarget, ...]:
    """Staging then prod, from `stagingAccount` / `prodAccount` (both or neither)."""
    accounts = {name: app.node.try_get_context(f"{name}Account") for name in ("staging", "prod")}
    given = {name: str(account) for name, account in accounts.items() if account not in (None, "")}
    if len(given) == 1:
        missing = next(f"{name}Account" for name in accounts if name not in given)
        raise ValueError(
            f"missing CDK context {missing!r}: give both stagingAccount and prodAccount, or neither"
        )
    return tuple(DeployTarget(name, account) for name, account in given.items())


def build_stacks(app: cdk.App, settings: Settings | None = None) -> CdpStacks:
    """Add the platform's stacks to `app` and the AwsSolutions checks to all of them."""
    settings = settings or get_settings()
    names = AwsResources.from_settings(settings)
    env = cdk.Environment(account=app.node.try_get_context("account") or None, region=names.region)
    source = SourceRepository.parse(
        _context(app, "connectionArn"), _context(app, "repository"), _context(app, "branch", "main")
    )
    quick_sight = _context(app, "quickSight", "true").lower() != "false"
    recovery = disaster_recovery(
        app.node.try_get_context(DR_VAULT_CONTEXT) or None,
        _context(app, ENVIRONMENT_CONTEXT, "dev"),
        names.region,
    )
    targets = _deploy_targets(app)
    app_context = {
        "connectionArn": source.connection_arn,
        "repository": f"{source.owner}/{source.name}",
        "branch": source.branch,
    }
    if any(target.name == PROD for target in targets):  # the prod deploy's own DR vault
        app_context[DR_VAULT_CONTEXT] = prod_disaster_recovery(
            app.node.try_get_context(PROD_DR_VAULT_CONTEXT) or None, names.region
        ).vault_arn
    data = DataPlaneStack(
        app, "CdpDataPlane", names=names, quick_sight=quick_sight, disaster_recovery=recovery, env=env
    )
    ml = MlPlatformStack(app, "CdpMlPlatform", key=data.key, lake=data.lake, env=env)
    delivery = DeliveryStack(
        app,
        "CdpDelivery",
        source=source,
        key=data.key,
        lake=data.lake,
        access_logs=data.access_logs,
        execution_role=ml.execution_role,
        audit_table=data.audit_table,
        audit_checkpoints=data.audit_checkpoints,
        data_keys_table=data.tables[DATA_KEYS_TABLE],
        endpoint_instance_type=_context(app, "endpointInstanceType", "ml.m5.large"),
        targets=targets,
        app_context=app_context,
        env=env,
    )
    governance = GovernanceStack(
        app,
        "CdpGovernance",
        key=data.key,
        lake=data.lake,
        access_logs=data.access_logs,
        tables=[*data.tables.values(), data.audit_table],
        disaster_recovery=recovery,
        env=env,
    )
    loop = MonitoringLoopStack(
        app,
        "CdpMonitoringLoop",
        promote_project=delivery.promote,
        deploy_project=delivery.deploy,
        event_bus=names.event_bus,
        alarm_actions=[governance.operator_alarms.topic_arn],
        slo_thresholds=Objectives.from_settings(settings).thresholds(),
        env=env,
    )
    runtime = RuntimeStack(
        app,
        "CdpRuntime",
        names=names,
        key=data.key,
        lake=data.lake,
        access_logs=data.access_logs,
        transactions_table=data.transactions_table,
        stream=data.stream,
        audit=AuditResources(
            data.audit_table, data.audit_checkpoints, data.tables[DATA_KEYS_TABLE], data.key
        ),
        env=env,
    )
    stacks = CdpStacks(data, ml, delivery, loop, governance, runtime)
    for stack in stacks.all():
        cdk.Tags.of(stack).add("project", "cdp")
        apply_permissions_boundary(stack)
    apply_checks(app)
    return stacks


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[cdk.App, CdpStacks]:
    """A new app with the platform's stacks (context given here wins over cdk.json's)."""
    app = cdk.App(context={**DEFAULT_CONTEXT, **(context or {})}, outdir=outdir)
    return app, build_stacks(app)
