"""EventBridge pattern matching: our matcher and moto's EventBridge (rules -> SQS) agree on every case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.events.patterns import PatternError, matches, validate_pattern

REGION = "eu-west-1"

ALARM_EVENT: dict[str, Any] = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:fraud-score-drift"],
    "detail": {
        "alarmName": "fraud-score-drift",
        "state": {"value": "ALARM", "reason": "3 of 3 breached"},
        "previousState": {"value": "OK"},
        "psi": 0.31,
        "tags": ["drift", "fraud"],
        "owner": None,
    },
}

# (case id, pattern, expected match against ALARM_EVENT)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("exact source", {"source": ["aws.cloudwatch"]}, True),
    ("exact source miss", {"source": ["cdp.pipelines"]}, False),
    ("one of several", {"source": ["cdp.pipelines", "aws.cloudwatch"]}, True),
    (
        "alarm rule",
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"state": {"value": ["ALARM"]}},
        },
        True,
    ),
    ("alarm rule on OK", {"detail": {"state": {"value": ["OK"]}}}, False),
    (
        "nested and previous",
        {"detail": {"previousState": {"value": ["OK"]}, "state": {"value": ["ALARM"]}}},
        True,
    ),
    ("prefix hit", {"detail": {"alarmName": [{"prefix": "fraud-"}]}}, True),
    ("prefix miss", {"detail": {"alarmName": [{"prefix": "clv-"}]}}, False),
    ("prefix on a number", {"detail": {"psi": [{"prefix": "0."}]}}, False),
    ("suffix", {"detail": {"alarmName": [{"suffix": "-drift"}]}}, True),
    ("equals-ignore-case", {"detail": {"state": {"value": [{"equals-ignore-case": "alarm"}]}}}, True),
    ("anything-but value", {"detail": {"state": {"value": [{"anything-but": "OK"}]}}}, True),
    ("anything-but list", {"detail": {"state": {"value": [{"anything-but": ["OK", "ALARM"]}]}}}, False),
    ("anything-but prefix", {"detail": {"alarmName": [{"anything-but": {"prefix": "clv-"}}]}}, True),
    ("anything-but missing field", {"detail": {"nope": [{"anything-but": "x"}]}}, False),
    ("numeric range hit", {"detail": {"psi": [{"numeric": [">", 0.25, "<=", 1]}]}}, True),
    ("numeric range miss", {"detail": {"psi": [{"numeric": ["<", 0.1]}]}}, False),
    ("numeric equals", {"detail": {"psi": [{"numeric": ["=", 0.31]}]}}, True),
    ("numeric on a string", {"detail": {"alarmName": [{"numeric": [">", 0]}]}}, False),
    ("exact number", {"detail": {"psi": [0.31]}}, True),
    ("string is not a number", {"detail": {"psi": ["0.31"]}}, False),
    ("exists true", {"detail": {"alarmName": [{"exists": True}]}}, True),
    ("exists false on missing", {"detail": {"runId": [{"exists": False}]}}, True),
    ("exists true on missing", {"detail": {"runId": [{"exists": True}]}}, False),
    ("exists false on present", {"detail": {"alarmName": [{"exists": False}]}}, False),
    ("array element", {"detail": {"tags": ["fraud"]}}, True),
    ("array element miss", {"detail": {"tags": ["clv"]}}, False),
    ("array prefix", {"resources": [{"prefix": "arn:aws:cloudwatch:"}]}, True),
    ("null value", {"detail": {"owner": [None]}}, True),
    ("null on missing", {"detail": {"runId": [None]}}, False),
    ("missing nested object", {"detail": {"nope": {"value": ["ALARM"]}}}, False),
    ("all fields must match", {"source": ["aws.cloudwatch"], "detail": {"alarmName": ["other"]}}, False),
]


@pytest.mark.parametrize(("case", "pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_our_matcher(case: str, pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, ALARM_EVENT) is expected, case


@pytest.fixture(scope="module")
def eventbridge_verdicts() -> Iterator[dict[str, bool]]:
    """For every case: did EventBridge (moto) route the event to the case's rule target?"""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            events = boto3.client("events", region_name=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            queues = {}
            for index, (case, pattern, _) in enumerate(CASES):
                bus = f"bus-{index}"
                url = sqs.create_queue(QueueName=f"case-{index}")["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                events.create_event_bus(Name=bus)
                events.put_rule(Name=f"rule-{index}", EventBusName=bus, EventPattern=json.dumps(pattern))
                events.put_targets(Rule=f"rule-{index}", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
                response = events.put_events(
                    Entries=[
                        {
                            "Source": ALARM_EVENT["source"],
                            "DetailType": ALARM_EVENT["detail-type"],
                            "Resources": ALARM_EVENT["resources"],
                            "Detail": json.dumps(ALARM_EVENT["detail"]),
                            "EventBusName": bus,
                        }
                    ]
                )
                assert response["FailedEntryCount"] == 0
                queues[case] = url
            yield {
                case: bool(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages"))
                for case, url in queues.items()
            }


@pytest.mark.parametrize(("case", "pattern", "expected"), CASES, ids=[c[0] for c in CASES])
def test_eventbridge_agrees(
    eventbridge_verdicts: dict[str, bool], case: str, pattern: dict[str, Any], expected: bool
) -> None:
    assert eventbridge_verdicts[case] is expected, case


@pytest.mark.parametrize(
    "pattern",
    [
        {},
        {"source": "aws.cloudwatch"},
        {"source": []},
        {"detail": {"x": [{"wildcard": "a*"}]}},
        {"detail": {"x": [{"numeric": [">"]}]}},
        {"detail": {"x": [{"numeric": ["~", 1]}]}},
        {"detail": {"x": [{"exists": "yes"}]}},
        {"detail": {"x": [{"prefix": 3}]}},
        {"detail": {"x": [{"prefix": "a", "suffix": "b"}]}},
    ],
)
def test_unsupported_or_malformed_patterns_are_rejected(pattern: dict[str, Any]) -> None:
    with pytest.raises(PatternError):
        validate_pattern(pattern)


def test_pattern_may_be_json_text() -> None:
    assert matches(json.dumps({"detail": {"state": {"value": ["ALARM"]}}}), ALARM_EVENT)
