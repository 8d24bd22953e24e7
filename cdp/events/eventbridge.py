"""AWS adapter of the event-bus port: EventBridge put_events, put_rule and put_targets.

A target's `action` is the target ARN. For a SageMaker pipeline ARN the parameters become the pipeline
parameters of the run; for any other ARN they are the target's constant JSON input.
EventBridge has no cooldown: a target's `cooldown_seconds` is enforced only by the local bus, so in AWS
the start of a retraining run must be guarded by whoever the target is (see the README's design notes).
EventBridge invokes the targets itself: there is no in-process action to register, and no record of
events or deliveries it could list (`activity_since` is empty; CloudWatch's rule metrics count them).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING, Any

from cdp.events.port import (
    MAX_TARGETS_PER_RULE,
    ActivityMark,
    BusActivity,
    Event,
    EventBusError,
    Rule,
    Target,
    TargetAction,
    validate_events,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

_SAGEMAKER_PIPELINE = ":sagemaker:"


class EventBridgeBus:
    """The event-bus port over one EventBridge bus (`client` is a boto3 EventBridge client)."""

    def __init__(self, client: Any, bus_name: str = "default", role_arn: str | None = None) -> None:
        self._client = client
        self.bus_name = bus_name
        self._role_arn = role_arn

    @classmethod
    def from_settings(cls, settings: Settings, bus_name: str | None = None) -> EventBridgeBus:
        """The bus `bus_name`, by default the platform's (`CDP_EVENT_BUS_NAME`)."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        bus = bus_name or AwsResources.from_settings(settings).event_bus
        return cls(aws_client(settings, "events"), bus)

    def put_rule(self, rule: Rule) -> None:
        request: dict[str, Any] = {
            "Name": rule.name,
            "State": "ENABLED" if rule.enabled else "DISABLED",
            "Description": rule.description,
            "EventBusName": self.bus_name,
        }
        if rule.event_pattern is not None:
            request["EventPattern"] = json.dumps(rule.event_pattern)
        else:
            request["ScheduleExpression"] = rule.schedule_expression
        self._client.put_rule(**request)

    def _target(self, target: Target) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": target.id, "Arn": target.action}
        if _SAGEMAKER_PIPELINE in target.action and ":pipeline/" in target.action:
            entry["SageMakerPipelineParameters"] = {
                "PipelineParameterList": [
                    {"Name": name, "Value": str(value)} for name, value in sorted(target.parameters.items())
                ]
            }
        elif target.parameters:
            entry["Input"] = json.dumps(dict(target.parameters))
        if self._role_arn:
            entry["RoleArn"] = self._role_arn
        return entry

    def put_targets(self, rule_name: str, targets: list[Target]) -> None:
        if len(targets) > MAX_TARGETS_PER_RULE:
            raise EventBusError(f"rule {rule_name}: at most {MAX_TARGETS_PER_RULE} targets")
        response = self._client.put_targets(
            Rule=rule_name, EventBusName=self.bus_name, Targets=[self._target(t) for t in targets]
        )
        if response.get("FailedEntryCount"):
            failed = [entry.get("TargetId") for entry in response.get("FailedEntries", [])]
            raise EventBusError(f"rule {rule_name}: targets {failed} were not accepted")

    def list_rules(self) -> list[Rule]:
        rules: list[Rule] = []
        kwargs: dict[str, Any] = {"EventBusName": self.bus_name}
        while True:
            page = self._client.list_rules(**kwargs)
            for entry in page.get("Rules", []):
                pattern = entry.get("EventPattern")
                rules.append(
                    Rule(
                        entry["Name"],
                        json.loads(pattern) if pattern else None,
                        entry.get("ScheduleExpression") or None,
                        entry.get("State") == "ENABLED",
                        entry.get("Description", ""),
                    )
                )
            if not page.get("NextToken"):
                return sorted(rules, key=lambda rule: rule.name)
            kwargs["NextToken"] = page["NextToken"]

    def put_events(self, events: list[Event]) -> list[str]:
        validate_events(events)
        entries = []
        for event in events:
            entry: dict[str, Any] = {
                "Source": event.source,
                "DetailType": event.detail_type,
                "Detail": json.dumps(dict(event.detail)),
                "Resources": list(event.resources),
                "EventBusName": self.bus_name,
            }
            if event.time is not None:
                entry["Time"] = event.time.astimezone(UTC)
            entries.append(entry)
        response = self._client.put_events(Entries=entries)
        if response.get("FailedEntryCount"):
            codes = sorted({e.get("ErrorCode", "?") for e in response["Entries"] if "ErrorCode" in e})
            raise EventBusError(f"{response['FailedEntryCount']} events were rejected ({', '.join(codes)})")
        return [entry["EventId"] for entry in response["Entries"]]

    def register_action(self, name: str, action: TargetAction) -> None:
        """Nothing to bind: EventBridge invokes the target named by its ARN."""

    def activity_mark(self) -> ActivityMark:
        return ActivityMark()

    def activity_since(self, mark: ActivityMark) -> BusActivity:
        """Nothing: EventBridge keeps no record of the events put or the targets it invoked."""
        return BusActivity()
