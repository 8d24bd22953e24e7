"""The event-bus port (EventBridge semantics): put events, define rules and their targets.

An event is delivered to every enabled rule whose pattern matches its envelope (`source`, `detail-type`,
`detail`, `resources`, ...); a scheduled rule (`rate(7 days)`) fires on its own with a "Scheduled Event".
A target names an action and constant parameters. On the local bus the action is the name of a callable
registered with the bus (e.g. `start-pipeline`); on EventBridge it is the target's ARN and the parameters
become its input (for a SageMaker pipeline ARN: the pipeline parameters).

Two capabilities serve a bus that runs its targets in this process, and are harmless elsewhere:
`register_action` binds an action name to a callable (EventBridge invokes the real targets, so its adapter
has nothing to bind), and `activity_since` lists the events put and the deliveries made since a mark
(EventBridge keeps no record it could list, so its adapter reports none).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from cdp.events.patterns import validate_pattern

MAX_EVENTS_PER_PUT = 10
MAX_TARGETS_PER_RULE = 5
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"
SCHEDULED_EVENT = "Scheduled Event"
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")


TargetAction = Callable[[Mapping[str, Any], Mapping[str, Any]], object]
"""An action run by a target: called with (the target's parameters, the event envelope)."""


class EventBusError(ValueError):
    """A rule, target or event breaks the bus's rules (message names the field, never event data)."""


@dataclass(frozen=True, slots=True)
class Event:
    """An event to put on the bus; `envelope()` gives the JSON shape rules are matched against."""

    source: str
    detail_type: str
    detail: Mapping[str, Any]
    time: datetime | None = None
    resources: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def envelope(self, account: str = "000000000000", region: str = "local") -> dict[str, Any]:
        """The EventBridge envelope of this event."""
        moment = (self.time or datetime.now(UTC)).astimezone(UTC)
        return {
            "version": "0",
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": account,
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": list(self.resources),
            "detail": json.loads(json.dumps(self.detail)),
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """Either an event pattern or a schedule expression (`rate(N minutes|hours|days)`)."""

    name: str
    event_pattern: Mapping[str, Any] | None = None
    schedule_expression: str | None = None
    enabled: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise EventBusError("rule name must be 1..64 characters of letters, digits, '.', '-', '_'")
        if (self.event_pattern is None) == (self.schedule_expression is None):
            raise EventBusError(f"rule {self.name}: give exactly one of event_pattern, schedule_expression")
        if self.event_pattern is not None:
            validate_pattern(self.event_pattern)
        if self.schedule_expression is not None:
            rate_seconds(self.schedule_expression)


@dataclass(frozen=True, slots=True)
class Target:
    """What a matched rule does: `action` with constant `parameters`, at most once per cooldown."""

    id: str
    action: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    cooldown_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.id):
            raise EventBusError("target id must be 1..64 characters of letters, digits, '.', '-', '_'")
        if not self.action:
            raise EventBusError(f"target {self.id}: action must not be empty")
        if self.cooldown_seconds < 0:
            raise EventBusError(f"target {self.id}: cooldown_seconds must not be negative")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What happened when a rule matched an event for one target."""

    event_id: str
    rule_name: str
    target_id: str
    status: str  # "invoked", "suppressed" (cooldown) or "failed"
    at: float  # epoch seconds
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityMark:
    """A position in a bus's record of events and deliveries (see `EventBus.activity_mark`)."""

    events: int = 0
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class BusActivity:
    """What a bus recorded after a mark: event envelopes put and deliveries made, oldest first."""

    events: tuple[dict[str, Any], ...] = ()
    deliveries: tuple[Delivery, ...] = ()


@runtime_checkable
class EventBus(Protocol):
    """Rules with EventBridge patterns over events, each with targets."""

    def put_rule(self, rule: Rule) -> None:
        """Create or replace a rule (its targets are kept)."""
        ...

    def put_targets(self, rule_name: str, targets: list[Target]) -> None:
        """Add or replace (by id) targets of an existing rule."""
        ...

    def list_rules(self) -> list[Rule]:
        """Every rule on the bus, by name."""
        ...

    def put_events(self, events: list[Event]) -> list[str]:
        """Put up to `MAX_EVENTS_PER_PUT` events; returns their ids in input order."""
        ...

    def register_action(self, name: str, action: TargetAction) -> None:
        """Run `action` in this process for the targets whose action is `name` (a bus whose targets are
        services it invokes itself ignores this)."""
        ...

    def activity_mark(self) -> ActivityMark:
        """The current end of the bus's record, for `activity_since`."""
        ...

    def activity_since(self, mark: ActivityMark) -> BusActivity:
        """The events put and deliveries made after `mark` (empty on a bus that keeps no record)."""
        ...


def rate_seconds(expression: str) -> int:
    """Seconds between firings of a `rate(...)` schedule; raises `EventBusError` on anything else."""
    found = _RATE.match(expression)
    if not found or int(found.group(1)) < 1:
        raise EventBusError("schedule_expression must be rate(N minute[s]|hour[s]|day[s]) with N >= 1")
    count, unit = int(found.group(1)), found.group(2).rstrip("s")
    if (count == 1) != (found.group(2) == unit):
        raise EventBusError("schedule_expression: use the singular unit for 1, the plural otherwise")
    return count * _UNIT_SECONDS[unit]


def validate_events(events: list[Event]) -> None:
    """Raise `EventBusError` when a put breaks the limits."""
    if not events:
        raise EventBusError("put_events needs at least one event")
    if len(events) > MAX_EVENTS_PER_PUT:
        raise EventBusError(f"put_events takes at most {MAX_EVENTS_PER_PUT} events, got {len(events)}")
    for index, event in enumerate(events):
        if not event.source or not event.detail_type:
            raise EventBusError(f"event {index}: source and detail_type must not be empty")
        if not isinstance(event.detail, Mapping):
            raise EventBusError(f"event {index}: detail must be an object")
