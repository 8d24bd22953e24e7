"""Local adapter of the event-bus port: rules, targets, events and deliveries in one SQLite file.

`put_events` records each event, matches it against every enabled pattern rule and runs the matched
targets' actions in-process (callables registered by name, e.g. `start-pipeline`). Scheduled rules fire
when `run_schedules()` is called (by the platform's scheduler loop or a cron job) and their rate has
elapsed since the last firing.

Cooldown: a target runs at most once per `cooldown_seconds` for its rule. The claim ("invoked" row) is
written in the same transaction that checks the last run, so two processes sharing the file cannot both
start it, and a restart does not reset it. A target whose action raises is recorded as "failed" (class of
the error only) and does not hold the cooldown, so the next matching event may try again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.events.patterns import matches
from cdp.events.port import (
    MAX_TARGETS_PER_RULE,
    SCHEDULED_EVENT,
    ActivityMark,
    BusActivity,
    Delivery,
    Event,
    EventBusError,
    Rule,
    Target,
    TargetAction,
    rate_seconds,
    validate_events,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_rules (
    name TEXT PRIMARY KEY,
    event_pattern TEXT,
    schedule_expression TEXT,
    enabled INTEGER NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_fired_ms INTEGER
);
CREATE TABLE IF NOT EXISTS event_targets (
    rule_name TEXT NOT NULL,
    target_id TEXT NOT NULL,
    action TEXT NOT NULL,
    parameters TEXT NOT NULL,
    cooldown_seconds REAL NOT NULL,
    PRIMARY KEY (rule_name, target_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    envelope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_deliveries (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    target_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS event_deliveries_target
    ON event_deliveries (rule_name, target_id, status, at_ms)
"""


class SqliteEventBus:
    """An EventBridge-like bus stored in a SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        *,
        actions: Mapping[str, TargetAction] | None = None,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._actions: dict[str, TargetAction] = dict(actions or {})
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._conn.execute(statement)

    @classmethod
    def from_settings(
        cls, settings: Settings, actions: Mapping[str, TargetAction] | None = None
    ) -> SqliteEventBus:
        """The platform's event bus: `<state_dir>/events.sqlite`."""
        return cls(settings.state_dir / "events.sqlite", actions=actions)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def register_action(self, name: str, action: TargetAction) -> None:
        """Make `name` usable as a target action in this process."""
        self._actions[name] = action

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- rules and targets ---------------------------------------------------------------------------
    def put_rule(self, rule: Rule) -> None:
        pattern = json.dumps(rule.event_pattern) if rule.event_pattern is not None else None
        with self._lock:
            self._conn.execute(
                "INSERT INTO event_rules (name, event_pattern, schedule_expression, enabled, description,"
                " created_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " event_pattern = excluded.event_pattern, schedule_expression = excluded.schedule_expression,"
                " enabled = excluded.enabled, description = excluded.description",
                (
                    rule.name,
                    pattern,
                    rule.schedule_expression,
                    int(rule.enabled),
                    rule.description,
                    self._now_ms(),
                ),
            )

    def put_targets(self, rule_name: str, targets: list[Target]) -> None:
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            if not self._conn.execute("SELECT 1 FROM event_rules WHERE name = ?", (rule_name,)).fetchone():
                raise EventBusError(f"rule {rule_name} does not exist")
            existing = {
                row[0]
                for row in self._conn.execute(
                    "SELECT target_id FROM event_targets WHERE rule_name = ?", (rule_name,)
                )
            }
            if len(existing | {t.id for t in targets}) > MAX_TARGETS_PER_RULE:
                raise EventBusError(f"rule {rule_name}: at most {MAX_TARGETS_PER_RULE} targets")
            self._conn.executemany(
                "INSERT OR REPLACE INTO event_targets"
                " (rule_name, target_id, action, parameters, cooldown_seconds) VALUES (?, ?, ?, ?, ?)",
                [
                    (rule_name, t.id, t.action, json.dumps(dict(t.parameters)), float(t.cooldown_seconds))
                    for t in targets
                ],
            )

    def list_rules(self) -> list[Rule]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, event_pattern, schedule_expression, enabled, description FROM event_rules"
                " ORDER BY name"
            ).fetchall()
        return [
            Rule(name, json.loads(pattern) if pattern else None, schedule, bool(enabled), description)
            for name, pattern, schedule, enabled, description in rows
        ]

    def list_targets(self, rule_name: str) -> list[Target]:
        """The targets of `rule_name`, by id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT target_id, action, parameters, cooldown_seconds FROM event_targets"
                " WHERE rule_name = ? ORDER BY target_id",
                (rule_name,),
            ).fetchall()
        return [Target(tid, action, json.loads(params), cooldown) for tid, action, params, cooldown in rows]

    # -- events ----------------------------------------------------------------------------------------
    def put_events(self, events: list[Event]) -> list[str]:
        validate_events(events)
        rules = [rule for rule in self.list_rules() if rule.enabled and rule.event_pattern is not None]
        for event in events:
            stamped = event if event.time else replace(event, time=datetime.fromtimestamp(self._clock(), UTC))
            envelope = stamped.envelope()
            with self._lock:
                self._conn.execute(
                    "INSERT OR IGNORE INTO events (id, time_ms, source, detail_type, envelope)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (event.id, self._now_ms(), event.source, event.detail_type, json.dumps(envelope)),
                )
            for rule in rules:
                if matches(rule.event_pattern or {}, envelope):
                    self._deliver(rule.name, envelope)
        return [event.id for event in events]

    def run_schedules(self) -> list[str]:
        """Fire every enabled scheduled rule whose rate has elapsed; returns the fired rules' names.

        A rule first fires one rate after it was created; missed firings collapse into one.
        """
        fired = []
        for rule in self.list_rules():
            if not rule.enabled or rule.schedule_expression is None:
                continue
            now_ms = self._now_ms()
            with self._lock, self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                created_ms, last_ms = self._conn.execute(
                    "SELECT created_ms, last_fired_ms FROM event_rules WHERE name = ?", (rule.name,)
                ).fetchone()
                due = (last_ms if last_ms is not None else created_ms) + rate_seconds(
                    rule.schedule_expression
                ) * 1000
                if now_ms < due:
                    continue
                self._conn.execute(
                    "UPDATE event_rules SET last_fired_ms = ? WHERE name = ?", (now_ms, rule.name)
                )
            event = Event(
                "aws.events",
                SCHEDULED_EVENT,
                {},
                time=datetime.fromtimestamp(now_ms / 1000, UTC),
                resources=(f"rule/{rule.name}",),
            )
            self._deliver(rule.name, event.envelope())
            fired.append(rule.name)
        return fired

    def _deliver(self, rule_name: str, envelope: Mapping[str, Any]) -> None:
        for target in self.list_targets(rule_name):
            delivery_id = self._claim(rule_name, target, envelope["id"])
            if delivery_id is None:
                continue
            action = self._actions.get(target.action)
            error = None
            if action is None:
                error = f"no action registered as {target.action!r}"
            else:
                try:
                    action(target.parameters, envelope)
                except Exception as exc:  # noqa: BLE001 - a failing target must not stop the others
                    error = type(exc).__name__
            if error is not None:
                with self._lock:
                    self._conn.execute(
                        "UPDATE event_deliveries SET status = 'failed', error = ? WHERE id = ?",
                        (error, delivery_id),
                    )

    def _claim(self, rule_name: str, target: Target, event_id: str) -> int | None:
        """Record the delivery; the row id when the target may run now, None when in cooldown."""
        now_ms = self._now_ms()
        with self._lock, self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            last = self._conn.execute(
                "SELECT MAX(at_ms) FROM event_deliveries"
                " WHERE rule_name = ? AND target_id = ? AND status = 'invoked'",
                (rule_name, target.id),
            ).fetchone()[0]
            cooling = last is not None and now_ms - last < target.cooldown_seconds * 1000
            cursor = self._conn.execute(
                "INSERT INTO event_deliveries (event_id, rule_name, target_id, status, at_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (event_id, rule_name, target.id, "suppressed" if cooling else "invoked", now_ms),
            )
        return None if cooling else cursor.lastrowid

    def events(self, source: str | None = None) -> list[dict[str, Any]]:
        """The envelopes of every event put on the bus (of one source, or all), oldest first."""
        sql = "SELECT envelope FROM events"
        args: tuple[Any, ...] = ()
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def deliveries(self, rule_name: str | None = None) -> list[Delivery]:
        """Every delivery (of one rule, or all), oldest first."""
        sql = "SELECT event_id, rule_name, target_id, status, at_ms, error FROM event_deliveries"
        args: tuple[Any, ...] = ()
        if rule_name is not None:
            sql, args = sql + " WHERE rule_name = ?", (rule_name,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [Delivery(e, r, t, s, at / 1000, err) for e, r, t, s, at, err in rows]

    def activity_mark(self) -> ActivityMark:
        with self._lock:
            (events,) = self._conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()
            (deliveries,) = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM event_deliveries").fetchone()
        return ActivityMark(events, deliveries)

    def activity_since(self, mark: ActivityMark) -> BusActivity:
        with self._lock:
            events = self._conn.execute(
                "SELECT envelope FROM events WHERE rowid > ? ORDER BY rowid", (mark.events,)
            ).fetchall()
            deliveries = self._conn.execute(
                "SELECT event_id, rule_name, target_id, status, at_ms, error FROM event_deliveries"
                " WHERE id > ? ORDER BY id",
                (mark.deliveries,),
            ).fetchall()
        return BusActivity(
            tuple(json.loads(row[0]) for row in events),
            tuple(Delivery(e, r, t, s, at / 1000, err) for e, r, t, s, at, err in deliveries),
        )
