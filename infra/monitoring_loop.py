"""The monitoring loop in AWS, synthesised from `monitoring.rules` (the one definition of the loop):
one CloudWatch alarm per `model_alarms(model)` and per `slo_alarms(thresholds)` (the service-level
objectives' alarms, thresholds from the `CDP_SLO_*` settings), and one EventBridge rule per `loop_rules()`
entry, with the same names, metrics, thresholds and event patterns.

Target actions map to AWS targets:
- `start-pipeline` -> the SageMaker pipeline `cdp-<pipeline>`; the target's parameters become the run's
  pipeline parameters (as `cdp.events.eventbridge` does), started with a role that may only
  `StartPipelineExecution` on those pipelines;
- `promote-model` / `deploy-champion` -> the CodeBuild promotion / deploy project, given the event's
  model package as `MODEL_NAME` and `MODEL_PACKAGE_ARN` (and `CI_MODELS` for the promotion's buildspec).
EventBridge has no cooldown: a target's `cooldown_seconds` applies on the local bus only.
Every alarm notifies the operators' topic (`alarm_actions`, the governance stack's SNS topic).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdp.alarms.port import MetricAlarm
from cdp.events.port import Rule, Target
from infra.resource_names import pipeline_name
from infra.roles import PlatformRole
from monitoring.rules import (
    DEPLOY_CHAMPION,
    PIPELINES,
    PROMOTE_MODEL,
    START_PIPELINE,
    SloThresholds,
    loop_rules,
    model_alarms,
    slo_alarms,
)

DEFAULT_BUS = "default"
# CodeBuild StartBuild input: the event's model package as build environment variables.
MODEL_PACKAGE_INPUT_PATHS = {"group": "$.detail.ModelPackageGroupName", "package": "$.detail.ModelPackageArn"}


def model_package_input(group_variables: tuple[str, ...]) -> str:
    """StartBuild input template: each of `group_variables` set to the event's group, and
    `MODEL_PACKAGE_ARN` to its package."""
    variables = [{"name": name, "value": "<group>", "type": "PLAINTEXT"} for name in group_variables]
    variables.append({"name": "MODEL_PACKAGE_ARN", "value": "<package>", "type": "PLAINTEXT"})
    return json.dumps({"environmentVariablesOverride": variables})


# the promotion's buildspec.yml gates the models listed in CI_MODELS
BUILD_INPUTS = {
    PROMOTE_MODEL: model_package_input(("MODEL_NAME", "CI_MODELS")),
    DEPLOY_CHAMPION: model_package_input(("MODEL_NAME",)),
}


def alarm_properties(alarm: MetricAlarm) -> dict[str, Any]:
    """`AWS::CloudWatch::Alarm` properties of one of our alarm definitions (CDK keyword names)."""
    metric = alarm.metric
    return {
        "alarm_name": alarm.name,
        "alarm_description": alarm.description,
        "namespace": metric.namespace,
        "metric_name": metric.name,
        "dimensions": [
            cloudwatch.CfnAlarm.DimensionProperty(name=name, value=value)
            for name, value in sorted(metric.dimensions.items())
        ],
        "statistic": str(metric.statistic),
        "period": metric.period_seconds,
        "threshold": alarm.threshold,
        "comparison_operator": str(alarm.comparison),
        "evaluation_periods": alarm.evaluation_periods,
        "datapoints_to_alarm": alarm.to_alarm,
        "treat_missing_data": str(alarm.treat_missing_data),
        "actions_enabled": True,
    }


class MonitoringLoopStack(Stack):
    """Drift alarms, the loop's rules and the role EventBridge uses to start their targets."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        promote_project: codebuild.IProject,
        deploy_project: codebuild.IProject,
        event_bus: str = DEFAULT_BUS,
        alarm_actions: Sequence[str] = (),
        slo_thresholds: SloThresholds | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._projects = {PROMOTE_MODEL: promote_project, DEPLOY_CHAMPION: deploy_project}
        definitions = [alarm for model in PIPELINES for alarm in model_alarms(model)]
        definitions += slo_alarms(slo_thresholds)  # an operator is called; no rule retrains on them
        self.alarms = [
            cloudwatch.CfnAlarm(
                self,
                f"Alarm-{alarm.name}",
                **alarm_properties(alarm),
                alarm_actions=list(alarm_actions) or None,
            )
            for alarm in definitions
        ]
        self.targets_role = PlatformRole(
            self,
            "TargetsRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge: start the loop's pipelines and builds",
        )
        self.targets_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution"],
                resources=[self.pipeline_arn(p) for p in sorted(PIPELINES.values())],
            )
        )
        self.targets_role.add_to_policy(
            iam.PolicyStatement(
                actions=["codebuild:StartBuild"],
                resources=[p.project_arn for p in self._projects.values()],
            )
        )
        self.rules = [self._rule(rule, targets, event_bus) for rule, targets in loop_rules()]

    def pipeline_arn(self, pipeline: str) -> str:
        return (
            f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/{pipeline_name(pipeline)}"
        )

    def _rule(self, rule: Rule, targets: list[Target], event_bus: str) -> events.CfnRule:
        options: dict[str, Any] = {}
        if rule.event_pattern is not None:
            options["event_pattern"] = json.loads(json.dumps(rule.event_pattern))
            if event_bus != DEFAULT_BUS:
                options["event_bus_name"] = event_bus
        else:
            options["schedule_expression"] = rule.schedule_expression  # schedules run on the default bus
        return events.CfnRule(
            self,
            f"Rule-{rule.name}",
            name=rule.name,
            description=rule.description,
            state="ENABLED" if rule.enabled else "DISABLED",
            targets=[self._target(target) for target in targets],
            **options,
        )

    def _target(self, target: Target) -> events.CfnRule.TargetProperty:
        role_arn = self.targets_role.role_arn
        if target.action == START_PIPELINE:
            return events.CfnRule.TargetProperty(
                id=target.id,
                arn=self.pipeline_arn(str(target.parameters["pipeline"])),
                role_arn=role_arn,
                sage_maker_pipeline_parameters=events.CfnRule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=pipeline_parameters(target.parameters)
                ),
            )
        if target.action in self._projects:
            return events.CfnRule.TargetProperty(
                id=target.id,
                arn=self._projects[target.action].project_arn,
                role_arn=role_arn,
                input_transformer=events.CfnRule.InputTransformerProperty(
                    input_paths_map=MODEL_PACKAGE_INPUT_PATHS, input_template=BUILD_INPUTS[target.action]
                ),
            )
        raise ValueError(f"target {target.id}: no AWS target for action {target.action!r}")


def pipeline_parameters(
    parameters: Mapping[str, Any],
) -> list[events.CfnRule.SageMakerPipelineParameterProperty]:
    """A target's parameters as SageMaker pipeline parameters, sorted by name (as the adapter sends them)."""
    return [
        events.CfnRule.SageMakerPipelineParameterProperty(name=name, value=str(value))
        for name, value in sorted(parameters.items())
    ]
