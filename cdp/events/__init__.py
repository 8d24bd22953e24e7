"""The event-bus port (EventBridge semantics) with a local SQLite bus and an EventBridge adapter."""

from cdp.events.patterns import PatternError, matches, validate_pattern
from cdp.events.port import ALARM_STATE_CHANGE, Event, EventBus, EventBusError, Rule, Target

__all__ = [
    "ALARM_STATE_CHANGE",
    "Event",
    "EventBus",
    "EventBusError",
    "PatternError",
    "Rule",
    "Target",
    "matches",
    "validate_pattern",
]
