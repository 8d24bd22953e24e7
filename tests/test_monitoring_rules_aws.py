"""The loop's rules on EventBridge (moto): installed through the EventBridge adapter, then events in the
shapes AWS sends are put on the bus and routed by moto's EventBridge pattern matching (each pattern rule
also gets an SQS probe target, so the queue that receives the event names the rule that fired); our local
matcher must agree on every case.

moto 5 answers `TestEventPattern` with an empty response (not implemented), so routing through
`PutEvents` is how its matcher is exercised here.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.events.eventbridge import EventBridgeBus
from cdp.events.patterns import matches
from cdp.events.port import Rule, Target
from monitoring.rules import (
    DEPLOY_CHAMPION,
    DEPLOY_ON_APPROVAL,
    PIPELINES,
    PROMOTE_MODEL,
    PROMOTE_ON_REGISTER,
    RETRAIN_WEEKLY,
    START_PIPELINE,
    install_rules,
    loop_rules,
    retrain_rule_name,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def _arn(target: Target) -> str:
    """The AWS target of an action, as the CDK app wires it."""
    if target.action == START_PIPELINE:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/cdp-{target.parameters['pipeline']}"
    project = {PROMOTE_MODEL: "cdp-promote", DEPLOY_CHAMPION: "cdp-deploy"}[target.action]
    return f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{project}"


def _aws_rules() -> list[tuple[Rule, list[Target]]]:
    return [(rule, [replace(t, action=_arn(t)) for t in targets]) for rule, targets in loop_rules()]


@pytest.fixture
def events(monkeypatch):
    """An EventBridge client on moto's default bus."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("events", region_name=REGION)


@pytest.fixture
def installed(events):
    """The loop's rules installed by the EventBridge adapter with the AWS targets of the CDK app."""
    names = install_rules(EventBridgeBus(events), _aws_rules())
    assert names == [rule.name for rule, _ in loop_rules()]
    return events


@pytest.fixture
def probes(events) -> dict[str, str]:
    """The loop's rules installed by the adapter, each target replaced by an SQS queue of its rule
    (moto cannot deliver to SageMaker or CodeBuild): rule name -> queue URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    urls, rules = {}, []
    for rule, targets in loop_rules():
        url = sqs.create_queue(QueueName=f"probe-{rule.name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rules.append((rule, [replace(t, action=arn, parameters={}) for t in targets]))
        if rule.event_pattern is not None:
            urls[rule.name] = url
    install_rules(EventBridgeBus(events), rules)
    return urls


def _routed_by_eventbridge(events, probes: dict[str, str], event: dict[str, Any]) -> set[str]:
    """Put `event` on the bus; the rules whose probe queue received it."""
    response = events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    sqs = boto3.client("sqs", region_name=REGION)
    fired = set()
    for name, url in probes.items():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in messages:
            body = json.loads(message["Body"])
            assert body["detail"] == event["detail"]  # the event itself reached the rule's target
            fired.add(name)
    return fired


def model_package_event(group: str, version: int, status: str) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event as SageMaker sends it (AWS docs' example shape)."""
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
    return {
        "version": "0",
        "id": "c800a495-b000-072c-7392-c683e89c96a8",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-28T04:45:23Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageName": f"{group}/{version}",
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "CreationTime": 1764304955225,
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": f"141502667606.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:1.7-1",
                        "ModelDataUrl": f"s3://cdp-lake/pipelines/fraud/{version}/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": status,
            "CreatedBy": {
                "IamIdentity": {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/cdp-sagemaker-execution/x"}
            },
        },
    }


def alarm_event(alarm_name: str, state: str, previous: str) -> dict[str, Any]:
    """A "CloudWatch Alarm State Change" event as CloudWatch sends it (AWS docs' example shape)."""
    model = alarm_name.split("-drift-")[0]
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-28T10:05:00Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm_name}"],
        "detail": {
            "alarmName": alarm_name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints [0.31 (28/11/26 10:00:00)] ...",
                "reasonData": '{"version":"1.0","queryDate":"2026-11-28T10:05:00.000+0000"}',
                "timestamp": "2026-11-28T10:05:00.000+0000",
            },
            "previousState": {
                "value": previous,
                "reason": "Threshold Crossed: 1 out of the last 1 datapoints ...",
                "timestamp": "2026-11-28T10:00:00.000+0000",
            },
            "configuration": {
                "description": f"{model}: PSI of the score above 0.25",
                "metrics": [
                    {
                        "id": "m0",
                        "metricStat": {
                            "metric": {
                                "namespace": "CDP/Monitoring",
                                "name": alarm_name.split("-drift-")[1],
                                "dimensions": {"Model": model},
                            },
                            "period": 300,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


FRAUD_RETRAIN = retrain_rule_name("cdp-fraud")
CLV_RETRAIN = retrain_rule_name("cdp-clv")
# event -> the rules it must start (every other rule of the loop must ignore it)
CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("registered fraud", model_package_event("cdp-fraud", 7, "PendingManualApproval"), {PROMOTE_ON_REGISTER}),
    ("approved clv", model_package_event("cdp-clv", 3, "Approved"), {DEPLOY_ON_APPROVAL}),
    ("approved segmentation", model_package_event("cdp-segmentation", 2, "Approved"), {DEPLOY_ON_APPROVAL}),
    ("rejected fraud", model_package_event("cdp-fraud", 8, "Rejected"), set()),
    ("approved other team", model_package_event("risk-scorecard", 4, "Approved"), set()),
    ("fraud PSI alarm", alarm_event("cdp-fraud-drift-ScorePSI", "ALARM", "OK"), {FRAUD_RETRAIN}),
    ("fraud PSI back to OK", alarm_event("cdp-fraud-drift-ScorePSI", "OK", "ALARM"), set()),
    ("fraud PSI no data", alarm_event("cdp-fraud-drift-ScorePSI", "INSUFFICIENT_DATA", "OK"), set()),
    ("clv feature drift", alarm_event("cdp-clv-drift-FeatureDriftShare", "ALARM", "OK"), {CLV_RETRAIN}),
    ("other alarm", alarm_event("cdp-fraudulent-drift-ScorePSI", "ALARM", "OK"), set()),
]


def _pattern_rules(events) -> dict[str, str]:
    """Installed pattern rules, read back from EventBridge: name -> pattern text."""
    rules = events.list_rules()["Rules"]
    return {r["Name"]: r["EventPattern"] for r in rules if r.get("EventPattern")}


def test_adapter_installs_every_rule_with_its_aws_targets(installed) -> None:
    events = installed
    rules = {r["Name"]: r for r in events.list_rules()["Rules"]}
    assert set(rules) == {rule.name for rule, _ in loop_rules()}
    for rule, _ in loop_rules():
        if rule.event_pattern is not None:
            assert json.loads(rules[rule.name]["EventPattern"]) == rule.event_pattern
        else:
            assert rules[rule.name]["ScheduleExpression"] == rule.schedule_expression
    (fraud_target,) = events.list_targets_by_rule(Rule=FRAUD_RETRAIN)["Targets"]
    assert fraud_target["Arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/cdp-fraud"
    assert fraud_target["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "model_name", "Value": "cdp-fraud"},
        {"Name": "pipeline", "Value": "fraud"},
        {"Name": "reason", "Value": "drift alarm"},
    ]
    weekly = events.list_targets_by_rule(Rule=RETRAIN_WEEKLY)["Targets"]
    assert sorted(t["Arn"].rsplit("/", 1)[1] for t in weekly) == sorted(
        f"cdp-{p}" for p in PIPELINES.values()
    )
    (promote,) = events.list_targets_by_rule(Rule=PROMOTE_ON_REGISTER)["Targets"]
    assert promote["Arn"].endswith(":project/cdp-promote")
    (deploy,) = events.list_targets_by_rule(Rule=DEPLOY_ON_APPROVAL)["Targets"]
    assert deploy["Arn"].endswith(":project/cdp-deploy")


@pytest.mark.parametrize(("case", "event", "expected"), CASES, ids=[c[0] for c in CASES])
def test_eventbridge_and_local_matcher_route_real_events_to_the_same_rules(
    events, probes, case, event, expected
) -> None:
    rules = _pattern_rules(events)
    assert len(rules) == len(PIPELINES) + 2  # retrain per model, promote, deploy
    by_eventbridge = _routed_by_eventbridge(events, probes, event)
    by_local = {name for name, pattern in rules.items() if matches(pattern, event)}
    assert by_eventbridge == expected
    assert by_local == by_eventbridge


def test_alarm_events_published_by_our_evaluator_start_the_same_rule(events, probes) -> None:
    """The embedded alarm evaluator's event (cdp.alarms) matches on EventBridge like CloudWatch's."""
    from datetime import UTC, datetime

    from cdp.alarms.port import AlarmState, StateChange, StateRecord
    from cdp.alarms.state_events import state_change_event
    from monitoring.rules import drift_alarms

    psi = next(alarm for alarm in drift_alarms("cdp-fraud") if alarm.metric.name == "ScorePSI")
    moment = datetime(2026, 11, 28, 10, 5, tzinfo=UTC)
    change = StateChange(
        psi,
        StateRecord(AlarmState.OK, "fine", moment),
        StateRecord(AlarmState.ALARM, "breached", moment),
        (0.4,),
    )
    envelope = state_change_event(change, ACCOUNT, REGION).envelope(ACCOUNT, REGION)
    rules = _pattern_rules(events)
    started = _routed_by_eventbridge(events, probes, envelope)
    assert started == {FRAUD_RETRAIN}
    assert {name for name, pattern in rules.items() if matches(pattern, envelope)} == started
