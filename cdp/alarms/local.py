"""Embedded adapter of the alarms port: definitions and states in SQLite, evaluated over the metrics port.

`evaluate` reads the last N complete periods of each alarm's metric, decides its state by CloudWatch's
rules (`cdp.alarms.evaluation`) and, on a change, puts CloudWatch's "Alarm State Change" event on the
event bus (so the bus's rules run their targets, as EventBridge's would) before storing the new state.
States are durable, so a restart neither forgets an ALARM nor re-announces it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.alarms.evaluation import decide, period_values
from cdp.alarms.port import (
    AlarmNotFound,
    AlarmState,
    ComparisonOperator,
    MetricAlarm,
    OnChange,
    StateChange,
    StateRecord,
    TreatMissingData,
)
from cdp.alarms.state_events import state_change_event
from cdp.metrics.port import MetricQuery, MetricsStore, Statistic

if TYPE_CHECKING:
    from cdp.events.port import EventBus
    from cdp.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarm_definitions (name TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_states (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL, updated_ms INTEGER NOT NULL
)
"""
_INITIAL_REASON = "Unchecked: initial alarm creation"


def _to_json(alarm: MetricAlarm) -> str:
    metric = alarm.metric
    return json.dumps(
        {
            "namespace": metric.namespace,
            "metric": metric.name,
            "statistic": str(metric.statistic),
            "period": metric.period_seconds,
            "dimensions": dict(metric.dimensions),
            "threshold": alarm.threshold,
            "comparison": str(alarm.comparison),
            "evaluation_periods": alarm.evaluation_periods,
            "datapoints_to_alarm": alarm.datapoints_to_alarm,
            "treat_missing_data": str(alarm.treat_missing_data),
            "description": alarm.description,
        },
        sort_keys=True,
    )


def _from_json(name: str, text: str) -> MetricAlarm:
    d: dict[str, Any] = json.loads(text)
    metric = MetricQuery(d["namespace"], d["metric"], Statistic(d["statistic"]), d["period"], d["dimensions"])
    return MetricAlarm(
        name,
        metric,
        d["threshold"],
        ComparisonOperator(d["comparison"]),
        d["evaluation_periods"],
        d["datapoints_to_alarm"],
        TreatMissingData(d["treat_missing_data"]),
        d["description"],
    )


class SqliteAlarmService:
    """Alarms evaluated by this process over `metrics`, their changes put on `bus` (see the module
    docstring). `clock` is the default `now` of `evaluate`."""

    def __init__(
        self,
        path: Path | str,
        metrics: MetricsStore,
        bus: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.time,
        account: str = "000000000000",
        region: str = "local",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._metrics = metrics
        self._bus = bus
        self._clock = clock
        self._account = account
        self._region = region
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._conn.execute(statement)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: MetricsStore, bus: EventBus) -> SqliteAlarmService:
        """The platform's alarms: `<state_dir>/alarms.sqlite`."""
        return cls(settings.state_dir / "alarms.sqlite", metrics, bus)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- definitions and states -----------------------------------------------------------------------
    def put_alarm(self, alarm: MetricAlarm) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO alarm_definitions (name, definition) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
                (alarm.name, _to_json(alarm)),
            )

    def get_alarm(self, name: str) -> MetricAlarm:
        with self._lock:
            row = self._conn.execute(
                "SELECT definition FROM alarm_definitions WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise AlarmNotFound(f"no alarm named {name}")
        return _from_json(name, row[0])

    def _record(self, name: str) -> StateRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT state, reason, updated_ms FROM alarm_states WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        return StateRecord(AlarmState(row[0]), row[1], datetime.fromtimestamp(row[2] / 1000, UTC))

    def _store(self, name: str, record: StateRecord) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO alarm_states (name, state, reason, updated_ms) VALUES (?, ?, ?, ?)",
                (name, record.state.value, record.reason, int(record.updated.timestamp() * 1000)),
            )

    def state(self, name: str) -> AlarmState:
        self.get_alarm(name)
        record = self._record(name)
        return record.state if record else AlarmState.INSUFFICIENT_DATA

    # -- evaluation -------------------------------------------------------------------------------------
    def period_values(self, alarm: MetricAlarm, now: datetime | None = None) -> tuple[float | None, ...]:
        """The statistic of each of the alarm's last N complete periods at `now`, oldest first."""
        return period_values(self._metrics, alarm, now.timestamp() if now else self._clock())

    def evaluate(
        self,
        now: datetime | None = None,
        names: Sequence[str] | None = None,
        on_change: OnChange | None = None,
    ) -> list[StateChange]:
        at = now.timestamp() if now else self._clock()
        if names is None:
            with self._lock:
                names = [
                    row[0] for row in self._conn.execute("SELECT name FROM alarm_definitions ORDER BY name")
                ]
        alarms = [self.get_alarm(name) for name in names]
        return [change for alarm in alarms if (change := self._evaluate(alarm, at, on_change)) is not None]

    def _evaluate(self, alarm: MetricAlarm, at: float, on_change: OnChange | None) -> StateChange | None:
        values = period_values(self._metrics, alarm, at)
        verdict = decide(alarm, values)
        moment = datetime.fromtimestamp(at, UTC)
        previous = self._record(alarm.name) or StateRecord(
            AlarmState.INSUFFICIENT_DATA, _INITIAL_REASON, moment
        )
        if verdict.state is None or verdict.state is previous.state:
            return None
        change = StateChange(alarm, previous, StateRecord(verdict.state, verdict.reason, moment), values)
        if on_change is not None:
            on_change(change)
        if self._bus is not None:
            # published before the state is stored: a crash in between re-announces the change on the
            # next evaluation rather than losing it (rule cooldowns absorb the repeat)
            self._bus.put_events([state_change_event(change, self._account, self._region)])
        self._store(alarm.name, change.current)
        return change
