"""One SQLite connection per thread to a file created readable by its owner only (mode 0600).

The platform's small embedded stores (audit log, identity register, erasure requests) are written by
several threads and processes; SQLite serialises the writers, each thread keeps its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path


class ThreadConnections:
    """`conn()` gives the calling thread's connection to `path` (autocommit, 30 s busy timeout)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close the calling thread's connection, if any."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
