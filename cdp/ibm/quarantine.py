"""Rows that failed validation, kept apart with the file, line, field and reason, and read statistics.

The quarantine is a Parquet file (`quarantine.parquet`) with columns file, line, field, reason, raw,
quarantined_at. Rows that are kept but flagged (`flag`: e.g. dated outside their card's life,
`cdp.ibm.card_life`) are listed the same way in `flagged.parquet` beside it, and counted apart. `raw`
holds the source line only for files without personal data (transactions); for the users and cards
files the reader passes None, and reasons of personal-data columns never quote a value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE_FILE = "quarantine.parquet"
FLAGGED_FILE = "flagged.parquet"  # rows kept but flagged, same columns

QUARANTINE_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("line", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("quarantined_at", pa.timestamp("us", tz="UTC")),
    ]
)

# Records held in memory before they are appended to the Parquet file.
FLUSH_EVERY = 50_000


@dataclass
class ReadStats:
    """Row counts of one source file: rows_read == rows_accepted + rows_quarantined, always; rows_flagged
    of the accepted rows are flagged (kept)."""

    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_flagged: int = 0

    def add(self, accepted: int, quarantined: int) -> None:
        self.rows_accepted += accepted
        self.rows_quarantined += quarantined
        self.rows_read += accepted + quarantined

    def to_dict(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "rows_flagged": self.rows_flagged,
        }


class Quarantine:
    """Collects rejected rows and writes them to `<directory>/quarantine.parquet` on flush/close.

    `total`, `by_reason`, `by_field` and `by_file` count everything added so far; `stats` holds the
    per-file `ReadStats` the reader keeps. A reason may carry a value-specific `detail`; it is stored in
    the record's reason text but counted under the general reason, so counts stay readable.
    Records are grouped by file but not strictly in line order (malformed rows are met while parsing,
    value errors after). One Quarantine owns its file: a new one on the same directory replaces it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / QUARANTINE_FILE
        self.total = 0
        self.by_reason: Counter[str] = Counter()
        self.by_field: Counter[str] = Counter()
        self.by_file: Counter[str] = Counter()
        self.reasons_by_file: dict[str, Counter[str]] = {}
        self.stats: dict[str, ReadStats] = {}
        self._pending: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
        self._writer: pq.ParquetWriter | None = None
        self.flagged_path = self.directory / FLAGGED_FILE
        self.flagged = 0
        self.flags_by_reason: Counter[str] = Counter()
        self._flag_pending: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
        self._flag_writer: pq.ParquetWriter | None = None

    def add(
        self,
        file: str,
        line: int,
        field: str | None,
        reason: str,
        raw: str | None,
        detail: str | None = None,
    ) -> None:
        """Quarantine one row. `reason` must not quote personal data; `detail` is appended in brackets."""
        self.total += 1
        self.by_reason[reason] += 1
        self.by_field[field or "(row)"] += 1
        self.by_file[file] += 1
        self.reasons_by_file.setdefault(file, Counter())[reason] += 1
        pending = self._pending
        pending["file"].append(file)
        pending["line"].append(int(line))
        pending["field"].append(field)
        pending["reason"].append(f"{reason} ({detail})" if detail else reason)
        pending["raw"].append(raw)
        pending["quarantined_at"].append(datetime.now(UTC))
        if len(pending["file"]) >= FLUSH_EVERY:
            self.flush()

    def flag(self, file: str, line: int, field: str | None, reason: str, raw: str | None) -> None:
        """Flag one accepted (kept) row: listed in `flagged.parquet`, counted in its file's `rows_flagged`."""
        self.flagged += 1
        self.flags_by_reason[reason] += 1
        self.stats_for(file).rows_flagged += 1
        pending = self._flag_pending
        for name, value in (("file", file), ("line", int(line)), ("field", field), ("reason", reason)):
            pending[name].append(value)
        pending["raw"].append(raw)
        pending["quarantined_at"].append(datetime.now(UTC))
        if len(pending["file"]) >= FLUSH_EVERY:
            self.flush()

    def stats_for(self, file: str) -> ReadStats:
        """The (mutable) read statistics of one source file, created on first use."""
        return self.stats.setdefault(file, ReadStats())

    def flush(self) -> None:
        """Append pending records to the Parquet file (created, possibly empty, on first flush); flags to
        theirs (created when there is one)."""
        if self._writer is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, QUARANTINE_SCHEMA)
        if self._pending["file"]:
            batch = pa.Table.from_pydict(self._pending, schema=QUARANTINE_SCHEMA)
            self._writer.write_table(batch)
            self._pending = {name: [] for name in QUARANTINE_SCHEMA.names}
        if self._flag_pending["file"]:
            if self._flag_writer is None:
                self._flag_writer = pq.ParquetWriter(self.flagged_path, QUARANTINE_SCHEMA)
            self._flag_writer.write_table(pa.Table.from_pydict(self._flag_pending, schema=QUARANTINE_SCHEMA))
            self._flag_pending = {name: [] for name in QUARANTINE_SCHEMA.names}

    def close(self) -> None:
        """Flush and close the Parquet files; the quarantine file exists afterwards (maybe empty), the
        flagged file only if a row was flagged (an earlier run's is removed)."""
        self.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._flag_writer is not None:
            self._flag_writer.close()
            self._flag_writer = None
        elif self.flagged == 0:
            self.flagged_path.unlink(missing_ok=True)

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_flagged(directory: Path) -> pa.Table:
    """The flagged (kept) rows listed under `directory` (empty table if none)."""
    path = Path(directory) / FLAGGED_FILE
    return pq.read_table(path) if path.exists() else QUARANTINE_SCHEMA.empty_table()


def read_quarantine(directory: Path) -> pa.Table:
    """The quarantine records written under `directory` (empty table if none)."""
    path = Path(directory) / QUARANTINE_FILE
    if not path.exists():
        return QUARANTINE_SCHEMA.empty_table()
    return pq.read_table(path)


class QuarantineRecorder:
    """Collects quarantine records in memory (in a worker process) for a `Quarantine` to take later.

    It offers the two methods readers use (`add`, `stats_for`); `replay_into` hands everything over in
    the order it was recorded, so counts and files end up exactly as if read in one process.
    """

    def __init__(self) -> None:
        self.records: list[tuple[str, int, str | None, str, str | None, str | None]] = []
        self.flags: list[tuple[str, int, str | None, str, str | None]] = []
        self.stats: dict[str, ReadStats] = {}

    def add(
        self,
        file: str,
        line: int,
        field: str | None,
        reason: str,
        raw: str | None,
        detail: str | None = None,
    ) -> None:
        self.records.append((file, int(line), field, reason, raw, detail))

    def flag(self, file: str, line: int, field: str | None, reason: str, raw: str | None) -> None:
        self.flags.append((file, int(line), field, reason, raw))

    def stats_for(self, file: str) -> ReadStats:
        return self.stats.setdefault(file, ReadStats())

    def replay_into(self, quarantine: Quarantine | QuarantineRecorder, line_offset: int = 0) -> None:
        """Hand everything over; `line_offset` is added to every line (rows read with lines counted from
        elsewhere than the file's start)."""
        for file, line, field, reason, raw, detail in self.records:
            quarantine.add(file, line + line_offset, field, reason, raw, detail)
        for file, line, field, reason, raw in self.flags:
            quarantine.flag(file, line + line_offset, field, reason, raw)
        for file, st in self.stats.items():
            quarantine.stats_for(file).add(st.rows_accepted, st.rows_quarantined)
