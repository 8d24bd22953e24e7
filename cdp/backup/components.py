"""What a backup holds: the platform state of a home that cannot be rebuilt from the lake or the source.

Each component lists its entries (paths relative to CDP_HOME) and, where its writers serialise on a lock
file, that lock: the entries of such a component are copied together under the lock, so the copy is one
consistent moment (the keyring and the data keys it wraps; the audit log and its signed checkpoints).
SQLite files are copied with SQLite's online backup API (a consistent snapshot, also of WAL databases,
while other processes keep writing); folders are copied file by file (MLflow artifacts are written once,
before the registry row that names them, so the registry is copied first).

The lake's table definitions (`catalog.json`, Glue's part) are kept, the lake's data is not (object storage,
versioned on its own; it opens again with the restored keys). Left out on purpose: the stream log and
its consumers' indexes, metrics, alarms and events (operational, rebuilt by running), source files.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    SQLITE = "sqlite"
    FILE = "file"
    TREE = "tree"


@dataclass(frozen=True)
class Entry:
    path: str  # relative to CDP_HOME
    kind: Kind


@dataclass(frozen=True)
class Component:
    name: str
    entries: tuple[Entry, ...]
    lock: str | None = None  # a lock file (relative to CDP_HOME) the component's writers take


COMPONENTS: tuple[Component, ...] = (
    Component(
        "keys",
        (Entry("state/keyring.json", Kind.FILE), Entry("state/data_keys.sqlite", Kind.SQLITE)),
        lock="state/keyring.json.lock",  # rotation and retirement of master keys take it
    ),
    Component(
        "core-banking",
        (Entry("state/oltp.sqlite3", Kind.SQLITE), Entry("state/erasure_requests.sqlite", Kind.SQLITE)),
    ),
    Component("registry", (Entry("state/mlflow.db", Kind.SQLITE), Entry("state/mlruns", Kind.TREE))),
    Component(
        "audit",
        (Entry("state/audit.sqlite", Kind.SQLITE), Entry("state/audit-checkpoints.jsonl", Kind.FILE)),
        lock="state/audit.sqlite.lock",  # every append takes it around the record and its checkpoint
    ),
    Component("online", (Entry("state/online_features.sqlite", Kind.SQLITE),)),
    Component("api-keys", (Entry("state/apikeys.sqlite3", Kind.SQLITE),)),
    Component("identities", (Entry("state/identities.sqlite", Kind.SQLITE), Entry("identities", Kind.TREE))),
    Component("lake-catalog", (Entry("state/catalog.json", Kind.FILE),)),  # table definitions (Glue's part)
)
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def entries() -> Iterator[Entry]:
    for component in COMPONENTS:
        yield from component.entries


def present(home: Path) -> list[str]:
    """The backed-up entries that exist in `home` (a non-empty tree counts, an empty folder does not)."""
    found = []
    for entry in entries():
        path = home / entry.path
        if entry.kind is Kind.TREE:
            if path.is_dir() and any(p.is_file() for p in path.rglob("*")):
                found.append(entry.path)
        elif path.exists():
            found.append(entry.path)
    return found


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def snapshot(home: Path, into: Path) -> dict[str, list[str]]:
    """Copy every component's entries from `home` into the folder `into` (same relative paths);
    {component: the files copied (relative paths)}."""
    copied: dict[str, list[str]] = {}
    for component in COMPONENTS:
        files: list[str] = []
        with ExitStack() as stack:
            if component.lock and (home / component.lock).parent.is_dir():
                stack.enter_context(_flock(home / component.lock))
            for entry in component.entries:
                files += _copy_entry(home, into, entry)
        copied[component.name] = files
    return copied


def _copy_entry(home: Path, into: Path, entry: Entry) -> list[str]:
    source, target = home / entry.path, into / entry.path
    if not source.exists():
        return []
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind is Kind.SQLITE:
        copy_sqlite(source, target)
        return [entry.path]
    if entry.kind is Kind.FILE:
        shutil.copyfile(source, target)
        return [entry.path]
    out = []
    for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(home).as_posix()
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, into / rel)
        out.append(rel)
    return out


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API), as one self-contained file."""
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # the copy carries no WAL of its own
        finally:
            dst.close()
    finally:
        src.close()


def integrity_problem(path: Path) -> str | None:
    """SQLite's own check of a restored database file: None when it is sound."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return type(e).__name__
    return None if result == "ok" else "integrity_check failed"


def kind_of(rel: str) -> Kind | None:
    """The kind of entry a restored file belongs to (None: not a path a backup may hold)."""
    for entry in entries():
        if rel == entry.path:
            return entry.kind
        if entry.kind is Kind.TREE and rel.startswith(entry.path + "/"):
            return Kind.FILE
    return None


def top_entry(rel: str) -> str:
    """The entry path (`state/mlruns` for a file under it) a restored file belongs to."""
    for entry in entries():
        if rel == entry.path or (entry.kind is Kind.TREE and rel.startswith(entry.path + "/")):
            return entry.path
    raise ValueError("not a backed-up path")
