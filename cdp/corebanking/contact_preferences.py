"""Customers' contact choices, kept by core banking: fraud notices (on unless the customer opted out) and
marketing (off unless the customer consented). Keyed by the core-banking user id.

A SQLite file in the state folder here; the AWS deployment keeps the same two flags on the core-banking
customer record (not built yet: the local store is used in both modes).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdp.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contact_preferences (
    user INTEGER PRIMARY KEY,
    fraud_notices INTEGER NOT NULL,
    marketing INTEGER NOT NULL,
    updated_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class ContactPreferences:
    fraud_notices: bool = True  # opt-out
    marketing: bool = False  # opt-in (consent)


class ContactPreferenceStore:
    """Reads and records customers' contact choices."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._con as con:
            con.execute(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> ContactPreferenceStore:
        return cls(settings.state_dir / "contact_preferences.sqlite")

    def _connect(self) -> sqlite3.Connection:
        return self._con  # `with` commits (or rolls back) without closing

    def get(self, user: int) -> ContactPreferences:
        with self._connect() as con:
            row = con.execute(
                "SELECT fraud_notices, marketing FROM contact_preferences WHERE user = ?", (user,)
            ).fetchone()
        return ContactPreferences() if row is None else ContactPreferences(bool(row[0]), bool(row[1]))

    def set(self, user: int, fraud_notices: bool | None = None, marketing: bool | None = None) -> None:
        """Record a customer's choice (None keeps the current one)."""
        now = self.get(user)
        values = (
            user,
            int(now.fraud_notices if fraud_notices is None else fraud_notices),
            int(now.marketing if marketing is None else marketing),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO contact_preferences VALUES (?, ?, ?, ?)", values)

    def all(self) -> dict[int, ContactPreferences]:
        with self._connect() as con:
            rows = con.execute("SELECT user, fraud_notices, marketing FROM contact_preferences").fetchall()
        return {u: ContactPreferences(bool(f), bool(m)) for u, f, m in rows}
