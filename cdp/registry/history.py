"""Champion history: one append-only record per decision that changed a model's champion.

A record (`ChampionChange`) says who moved the champion, when, why, and from which version to which
(`None` = no champion). One record per decision keeps a change atomic in every store (one MLflow tag,
one S3 object); `events` expands the records into the port's `ChampionEvent`s. The adapters only ever
add records under new keys: nothing here rewrites or removes one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdp.registry.port import REJECTED, RETIRED, ChampionEvent

APPROVE = "approve"
REJECT = "reject"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class ChampionChange:
    """The champion of `model_name` went from `before` to `after` at `at`, decided by `actor`."""

    model_name: str
    at: datetime
    actor: str
    action: str  # approve, reject or rollback
    reason: str
    before: int | None
    after: int | None

    def to_json(self) -> str:
        doc = {
            "model": self.model_name, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
            "reason": self.reason, "before": self.before, "after": self.after,
        }  # fmt: skip
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ChampionChange:
        doc: Mapping[str, Any] = json.loads(text)
        return cls(
            model_name=str(doc["model"]),
            at=as_utc(datetime.fromisoformat(str(doc["at"]))),
            actor=str(doc["actor"]),
            action=str(doc["action"]),
            reason=str(doc["reason"]),
            before=None if doc["before"] is None else int(doc["before"]),
            after=None if doc["after"] is None else int(doc["after"]),
        )


def new_change(
    model_name: str, actor: str, action: str, reason: str, before: int | None, after: int | None
) -> ChampionChange:
    """A change happening now."""
    return ChampionChange(model_name, datetime.now(UTC), actor, action, reason, before, after)


def record_key(change: ChampionChange) -> str:
    """A new, never reused name for a record, sorting in time order: `<ns since epoch>-<random>`."""
    micros = int(change.at.timestamp()) * 1_000_000 + change.at.microsecond
    return f"{micros:017d}-{uuid.uuid4().hex[:12]}"


def as_utc(when: datetime) -> datetime:
    """Naive times are UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def ordered(changes: Iterable[ChampionChange]) -> list[ChampionChange]:
    return sorted(changes, key=lambda c: c.at)


def events(changes: Iterable[ChampionChange]) -> list[ChampionEvent]:
    """The records as events, oldest first: a replaced champion `stopped`, then the new one `became`."""
    out: list[ChampionEvent] = []
    for c in ordered(changes):
        if c.before is not None and c.before != c.after:
            out.append(ChampionEvent(c.model_name, c.before, "stopped", c.at, c.actor, c.action, c.reason))
        if c.after is not None and c.after != c.before:
            out.append(ChampionEvent(c.model_name, c.after, "became", c.at, c.actor, c.action, c.reason))
    return out


def champion_at(changes: Iterable[ChampionChange], when: datetime, current: int | None) -> int | None:
    """The champion at `when`: the last change at or before it decides; before the first change, the
    champion that change replaced; with no history at all, the current champion."""
    history = ordered(changes)
    if not history:
        return current
    moment = as_utc(when)
    last = None
    for change in history:
        if change.at <= moment:
            last = change
    return history[0].before if last is None else last.after


def previous_champion(
    changes: Iterable[ChampionChange], current: int | None, status_of: Callable[[int], str]
) -> int | None:
    """The version to roll back to: walking the history back from the latest change, the first champion
    other than `current` that has not been rejected or retired since (`status_of(version)` gives its
    status)."""
    seen: set[int] = set()
    for change in reversed(ordered(changes)):
        for version in (change.after, change.before):
            if version is None or version == current or version in seen:
                continue
            seen.add(version)
            if status_of(version) not in (REJECTED, RETIRED):
                return version
    return None
