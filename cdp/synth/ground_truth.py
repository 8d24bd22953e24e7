"""The generator's hidden truth, written beside the data in `ground_truth/` (only evaluation reads it)."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.synth.user_batch import TRUTH_EPISODES_SCHEMA, TRUTH_TRANSACTIONS_SCHEMA, TRUTH_USERS_SCHEMA

TRANSACTIONS_TRUTH_FILE = "transactions.parquet"
USERS_TRUTH_FILE = "users.parquet"
EPISODES_TRUTH_FILE = "episodes.parquet"
MANIFEST_FILE = "manifest.json"


class GroundTruthWriter:
    """Appends per-transaction, per-user and per-episode truth incrementally (row groups per batch)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._transactions = pq.ParquetWriter(
            self.folder / TRANSACTIONS_TRUTH_FILE, TRUTH_TRANSACTIONS_SCHEMA
        )
        self._users = pq.ParquetWriter(self.folder / USERS_TRUTH_FILE, TRUTH_USERS_SCHEMA)
        self._episodes = pq.ParquetWriter(self.folder / EPISODES_TRUTH_FILE, TRUTH_EPISODES_SCHEMA)

    def write(self, truth: pa.Table, users: pa.Table, first_line: int, episodes: pa.Table) -> None:
        """`truth.line` holds 0-based positions in the batch; `first_line` is the file line of row 0."""
        lines = pc.add(truth.column("line"), first_line)
        self._transactions.write_table(truth.set_column(0, "line", lines))
        self._users.write_table(users)
        self._episodes.write_table(episodes)

    def close(self) -> None:
        self._transactions.close()
        self._users.close()
        self._episodes.close()

    def __enter__(self) -> GroundTruthWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return path
