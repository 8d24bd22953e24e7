"""Local adapter of the OLTP store: one SQLite file in WAL mode (readers never block the writer).

Tables (STRICT, typed columns named as in the clean schemas):

    customers     PRIMARY KEY (user)                              users file row + email
    cards         PRIMARY KEY (user, card_index)   WITHOUT ROWID  cards file row: PAN encrypted, no CVV
    transactions  PRIMARY KEY (user, card, ts, transaction_id)  WITHOUT ROWID
    erasures      PRIMARY KEY (user)                              tombstones (no PII; see erasures.py)

The transactions key clusters a card's history in time order, the same order as the DynamoDB sort key
`TS#<iso>#<transaction_id>`; `transaction_id` is derived from (user, card, ts, line) so the key is unique
per transaction and `INSERT OR IGNORE` makes re-sent transactions a no-op. Dates and timestamps are ISO
text, booleans 0/1, the error-code list JSON text. Each write call is one transaction (`executemany`
over a stream of rows, so memory stays flat). `secure_delete` is on and erasure checkpoints the WAL so
deleted PII does not linger in free pages; the file is created readable by its owner only. The
transactions of a user with a tombstone are held: reads exclude them in SQL unless made for the legal hold.

A store written by an earlier release keeps a `cvv` and a clear `card_number` column in `cards`. It still
opens (customers and transactions work), but card calls raise `LegacyStoreError` naming the migration
command; `legacy_cards` + `migrate_cards` rebuild the table without those columns, then VACUUM and
truncate the WAL so the old values linger neither in free pages nor in the log.
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cdp.oltp.erasures import LEGAL_HOLD_PURPOSE, Erasure
from cdp.oltp.port import MIGRATE_COMMAND, Counts, LegacyStoreError, Row
from cdp.oltp.records import CARD, CUSTOMER, TRANSACTION, Entity, Kind, normalise_transaction
from cdp.settings import Settings

DB_FILE = "oltp.sqlite3"

_SQL_TYPE = {
    Kind.INT: "INTEGER",
    Kind.FLOAT: "REAL",
    Kind.STR: "TEXT",
    Kind.BOOL: "INTEGER",
    Kind.DATE: "TEXT",
    Kind.TIMESTAMP: "TEXT",
    Kind.STR_LIST: "TEXT",
}


def _iso_seconds(v: datetime) -> str:
    return v.isoformat(timespec="seconds")


def _json_list(v: list[str]) -> str:
    return json.dumps(v) if v else "[]"


_ENCODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.BOOL: int,
    Kind.DATE: date.isoformat,
    Kind.TIMESTAMP: _iso_seconds,
    Kind.STR_LIST: _json_list,
}
_DECODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.BOOL: bool,
    Kind.DATE: date.fromisoformat,
    Kind.TIMESTAMP: datetime.fromisoformat,
    Kind.STR_LIST: json.loads,
}

_PRIMARY_KEYS = {
    CUSTOMER.name: ("user",),
    CARD.name: ("user", "card_index"),
    TRANSACTION.name: ("user", "card", "ts", "transaction_id"),
}


ERASURES_SQL = """CREATE TABLE IF NOT EXISTS erasures (
  "user" INTEGER NOT NULL PRIMARY KEY,
  erased_at TEXT NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  hold_until TEXT NOT NULL,
  request_id TEXT,
  cards TEXT NOT NULL,
  purged_at TEXT
) STRICT"""
_ERASURE_COLUMNS = '"user", erased_at, actor, role, hold_until, request_id, cards, purged_at'
_NOT_HELD = 'NOT EXISTS (SELECT 1 FROM erasures AS e WHERE e."user" = transactions."user")'


def _erasure_params(e: Erasure) -> tuple[Any, ...]:
    purged = _iso_seconds(e.purged_at) if e.purged_at else None
    return (e.user, _iso_seconds(e.erased_at), e.actor, e.role, e.hold_until.isoformat(), e.request_id,
            json.dumps(list(e.cards)), purged)  # fmt: skip


def _erasure(row: Sequence[Any]) -> Erasure:
    user, erased_at, actor, role, hold_until, request_id, cards, purged_at = row
    return Erasure(
        user=user,
        erased_at=datetime.fromisoformat(erased_at),
        actor=actor,
        role=role,
        hold_until=date.fromisoformat(hold_until),
        request_id=request_id,
        cards=tuple(json.loads(cards)),
        purged_at=datetime.fromisoformat(purged_at) if purged_at else None,
    )


def _q(name: str) -> str:
    return f'"{name}"'


def _columns(names: Sequence[str]) -> str:
    return ", ".join(_q(n) for n in names)


_LEGACY_CARD_COLUMNS = frozenset({"cvv", "card_number"})  # written by earlier releases, removed on migration
_MIGRATING = "cards_migrating"


def create_table_sql(entity: Entity, table: str | None = None) -> str:
    """The `CREATE TABLE` statement of an entity (under another table name if given)."""
    key = _PRIMARY_KEYS[entity.name]
    cols = ",\n  ".join(
        f"{_q(f.name)} {_SQL_TYPE[f.kind]}{' NOT NULL' if f.name in key else ''}" for f in entity.fields
    )
    rowid = "" if key == ("user",) else ", WITHOUT ROWID"
    return (
        f"CREATE TABLE IF NOT EXISTS {table or entity.name} (\n  {cols},\n  PRIMARY KEY ({_columns(key)})\n)"
        f" STRICT{rowid}"
    )


def _encoder(entity: Entity) -> Callable[[dict[str, Any]], list[Any]]:
    """Canonical row -> parameter list in `entity.names` order."""
    values_of = operator.itemgetter(*entity.names)
    conversions = [(i, fn) for i, f in enumerate(entity.fields) if (fn := _ENCODE.get(f.kind))]

    def encode(row: dict[str, Any]) -> list[Any]:
        values = list(values_of(row))
        for i, fn in conversions:
            if values[i] is not None:
                values[i] = fn(values[i])
        return values

    return encode


def _decoder(entity: Entity, names: Sequence[str]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Result tuple of `names` -> canonical row dict."""
    plan = [(n, _DECODE.get(entity.kind(n))) for n in names]

    def decode(values: Sequence[Any]) -> dict[str, Any]:
        return {
            n: (v if (fn is None or v is None) else fn(v)) for (n, fn), v in zip(plan, values, strict=True)
        }

    return decode


def _create_private_file(path: Path) -> None:
    """Create `path` (mode 0600) if it does not exist, so SQLite's -wal/-shm files inherit the mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


class SqliteOltpStore:
    """The OLTP store in one SQLite file. Safe to share between threads (calls are serialised)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteOltpStore:
        """The local store at `<state_dir>/oltp.sqlite3`."""
        return cls(settings.state_dir / DB_FILE)

    def __init__(self, path: Path | str, *, page_size: int = 1_000, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.page_size = page_size
        _create_private_file(self.path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe in WAL mode
        self._conn.execute("PRAGMA secure_delete=ON")
        for entity in (CUSTOMER, CARD, TRANSACTION):
            self._conn.execute(create_table_sql(entity))
        self._conn.execute(ERASURES_SQL)
        self._card_columns = self._columns_of("cards")
        self._encode = {e.name: _encoder(e) for e in (CUSTOMER, CARD, TRANSACTION)}
        self._decode_readable = {e.name: _decoder(e, e.readable_names) for e in (CUSTOMER, CARD, TRANSACTION)}
        self._upsert_sql = {e.name: self._upsert_statement(e) for e in (CUSTOMER, CARD)}
        self._insert_new_sql = (
            f"INSERT OR IGNORE INTO transactions ({_columns(TRANSACTION.names)}) "
            f"VALUES ({', '.join('?' * len(TRANSACTION.names))})"
        )

    @staticmethod
    def _upsert_statement(entity: Entity) -> str:
        key = _PRIMARY_KEYS[entity.name]
        updates = ", ".join(f"{_q(n)} = excluded.{_q(n)}" for n in entity.names if n not in key)
        return (
            f"INSERT INTO {entity.name} ({_columns(entity.names)}) "
            f"VALUES ({', '.join('?' * len(entity.names))}) "
            f"ON CONFLICT ({_columns(key)}) DO UPDATE SET {updates}"
        )

    # -- writes ---------------------------------------------------------------------------------------
    def _write_many(self, sql: str, params: Iterable[tuple[Any, ...]]) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                changed = self._conn.executemany(sql, params).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return max(changed, 0)

    def _upsert(self, entity: Entity, rows: Iterable[Row]) -> int:
        encode = self._encode[entity.name]
        params = (encode(entity.normalise(row, i)) for i, row in enumerate(rows, 1))
        return self._write_many(self._upsert_sql[entity.name], params)

    def upsert_customers(self, rows: Iterable[Row]) -> int:
        return self._upsert(CUSTOMER, rows)

    def upsert_cards(self, rows: Iterable[Row]) -> int:
        self._refuse_legacy()
        return self._upsert(CARD, rows)

    def put_transactions(self, rows: Iterable[Row]) -> int:
        encode = self._encode[TRANSACTION.name]
        params = (encode(normalise_transaction(row, i)) for i, row in enumerate(rows, 1))
        return self._write_many(self._insert_new_sql, params)

    def delete_customer(self, user: int) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                removed = self._conn.execute("DELETE FROM cards WHERE user = ?", (user,)).rowcount
                removed += self._conn.execute("DELETE FROM customers WHERE user = ?", (user,)).rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if removed:
                # Copy the erased pages into the main file and truncate the WAL (best effort: a reader
                # still holding an old snapshot delays it until the next checkpoint).
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def record_erasure(self, erasure: Erasure) -> Erasure:
        with self._lock:
            self._conn.execute(
                f"INSERT OR IGNORE INTO erasures ({_ERASURE_COLUMNS}) VALUES ({', '.join('?' * 8)})",
                _erasure_params(erasure),
            )
        stored = self.get_erasure(erasure.user)
        assert stored is not None
        return stored

    def get_erasure(self, user: int) -> Erasure | None:
        with self._lock:
            row = self._conn.execute(
                f'SELECT {_ERASURE_COLUMNS} FROM erasures WHERE "user" = ?', (user,)
            ).fetchone()
        return _erasure(row) if row else None

    def iter_erasures(self) -> Iterator[Erasure]:
        with self._lock:
            rows = self._conn.execute(f'SELECT {_ERASURE_COLUMNS} FROM erasures ORDER BY "user"').fetchall()
        yield from (_erasure(r) for r in rows)

    def purge_held_transactions(self, user: int, purged_at: datetime) -> int:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if not self._conn.execute('SELECT 1 FROM erasures WHERE "user" = ?', (user,)).fetchone():
                    self._conn.execute("ROLLBACK")
                    return 0
                deleted = self._conn.execute('DELETE FROM transactions WHERE "user" = ?', (user,)).rowcount
                self._conn.execute(
                    'UPDATE erasures SET purged_at = ? WHERE "user" = ?', (_iso_seconds(purged_at), user)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if deleted:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    # -- reads ----------------------------------------------------------------------------------------
    def _select(
        self, entity: Entity, where: str, params: Sequence[Any], tail: str = ""
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {_columns(entity.readable_names)} FROM {entity.name} WHERE {where} {tail}"
        decode = self._decode_readable[entity.name]
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [decode(r) for r in rows]

    def get_customer(self, user: int) -> dict[str, Any] | None:
        found = self._select(CUSTOMER, "user = ?", (user,))
        return found[0] if found else None

    def get_card(self, user: int, card_index: int) -> dict[str, Any] | None:
        self._refuse_legacy()
        found = self._select(CARD, "user = ? AND card_index = ?", (user, card_index))
        return found[0] if found else None

    def list_cards(self, user: int) -> list[dict[str, Any]]:
        self._refuse_legacy()
        return self._select(CARD, "user = ?", (user,), "ORDER BY card_index")

    def iter_customers(self) -> Iterator[dict[str, Any]]:
        last = -(2**63)
        while page := self._select(CUSTOMER, "user > ?", (last,), f"ORDER BY user LIMIT {self.page_size}"):
            yield from page
            last = page[-1]["user"]

    def iter_cards(self) -> Iterator[dict[str, Any]]:
        self._refuse_legacy()
        last = (-(2**63), -(2**63))
        tail = f"ORDER BY user, card_index LIMIT {self.page_size}"
        while page := self._select(CARD, "(user, card_index) > (?, ?)", last, tail):
            yield from page
            last = (page[-1]["user"], page[-1]["card_index"])

    def transactions_for_card(
        self,
        user: int,
        card: int,
        since: datetime | None = None,
        limit: int | None = None,
        *,
        purpose: str | None = None,
    ) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []
        where, params = "user = ? AND card = ?", [user, card]
        if purpose != LEGAL_HOLD_PURPOSE:
            where += f" AND {_NOT_HELD}"
        if since is not None:
            where += " AND ts >= ?"
            params.append(_iso_seconds(since))
        tail = "ORDER BY ts, transaction_id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return self._select(TRANSACTION, where, params, tail)

    # -- migration of stores written by earlier releases ------------------------------------------------
    def _columns_of(self, table: str) -> set[str]:
        with self._lock:
            return {r[1] for r in self._conn.execute(f"PRAGMA table_info({table})")}

    def _is_legacy(self) -> bool:
        return bool(self._card_columns & _LEGACY_CARD_COLUMNS)

    def _refuse_legacy(self) -> None:
        if self._is_legacy():
            raise LegacyStoreError(
                f"core-banking store {self.path.name} keeps cards in the old format (CVV, clear card "
                f"number): run `{MIGRATE_COMMAND}`"
            )

    def legacy_cards(self) -> Iterator[dict[str, Any]]:
        if not self._is_legacy():
            return iter(())
        number = '"card_number"' if "card_number" in self._card_columns else "NULL"
        with self._lock:
            rows = self._conn.execute(
                f"SELECT user, card_index, {number} FROM cards ORDER BY user, card_index"
            ).fetchall()
        return iter([{"user": u, "card_index": c, "card_number": n} for u, c, n in rows])

    def migrate_cards(self, protected: Iterable[Row]) -> int:
        if not self._is_legacy():
            return 0
        kept = [n for n in CARD.names if n in self._card_columns]
        updates = ((r["card_number_enc"], r["pan_last4"], r["user"], r["card_index"]) for r in protected)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(f"DROP TABLE IF EXISTS {_MIGRATING}")
                self._conn.execute(create_table_sql(CARD, _MIGRATING))
                moved = self._conn.execute(
                    f"INSERT INTO {_MIGRATING} ({_columns(kept)}) SELECT {_columns(kept)} FROM cards"
                ).rowcount
                self._conn.executemany(
                    f"UPDATE {_MIGRATING} SET card_number_enc = ?, pan_last4 = ? "
                    "WHERE user = ? AND card_index = ?",
                    updates,
                )
                self._conn.execute("DROP TABLE cards")  # secure_delete zeroes its pages
                self._conn.execute(f"ALTER TABLE {_MIGRATING} RENAME TO cards")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            # Rewrite the whole file (no free page keeps an old value), then move it out of the WAL and
            # truncate the log.
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._card_columns = self._columns_of("cards")
        return max(moved, 0)

    def counts(self) -> Counts:
        with self._lock:
            n = [self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _PRIMARY_KEYS]
        return Counts(customers=n[0], cards=n[1], transactions=n[2])

    # -- lifecycle ------------------------------------------------------------------------------------
    def journal_mode(self) -> str:
        """SQLite's journal mode of this connection (`wal`)."""
        with self._lock:
            return self._conn.execute("PRAGMA journal_mode").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteOltpStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
