"""One shard of the batch job, in a worker process: read -> validate/quarantine -> protect -> one Parquet
file per partition.

The shard's pieces are read in blocks of `READ_BYTES` (the typed fast path for a block whose rows are all
valid, else the reference text path), with lines counted from each piece's start; once the piece's first
file line is known (`cdp.batch.lines`) lines are shifted, rows protected, gathered by `year=/month=`
partition and each partition written as `part-batch-<shard>.parquet` through the object-store port (an
atomic replace: a shard written again after a crash replaces its files, never adds to them). The
shard's manifest, written last, lists its files; a resumed run reads a done shard again only for its
quarantine records and counts.

Rows of erased customers (no token can be made for them any more) are quarantined with the reason
"erased", so that the rows read are still the rows accepted plus the rows quarantined. Accepted rows dated
outside their card's life are kept and flagged (`cdp.ibm.card_life`). Rows at or after the
stream cutoff, when it is known, are left out; otherwise every accepted row is written and the job trims
the newest partitions once it has computed the cutoff (cdp.batch.trim).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.batch.lines import first_line, publish_count
from cdp.batch.plan import Piece, Shard, line_end_at_or_after
from cdp.ibm.card_life import CardLives, flag_outside
from cdp.ibm.quarantine import QuarantineRecorder
from cdp.ibm.reader import DICTIONARY_TEXT_COLUMNS, as_dictionary_text, read_text_segment, read_valid_segment
from cdp.ibm.rows import Segment, count_line_ends
from cdp.lake import tables
from cdp.lake.transactions import ERASED_REASON, CardNumbers, month_runs, partition_order, year_month
from cdp.lake.writer import LakeWriter, partition_file_bytes
from cdp.settings import Settings

JOB = "batch-transactions"
LAYOUT = "shards-parquet-v2"  # recorded in every shard's manifest and in the job's identity
LABEL = "batch"  # partition files of this job: part-batch-<shard>.parquet
# Bytes parsed at once: the fast path takes or leaves a block whole, the text path re-reads it.
READ_BYTES = 64 << 20
UPLOAD_THREADS = 4
# Lake columns with few distinct values (dictionary-encoded in the partition files; the rest stay plain).
DICTIONARY_COLUMNS = (
    "user_token",
    "card_token",
    "channel",
    "merchant_city",
    "merchant_state",
    "zip",
    "mcc",
    "errors",
)


@dataclass(frozen=True)
class ShardTask:
    shard: Shard
    first_piece: int  # plan-wide number of the shard's first piece
    file_starts: tuple[int, ...]  # for each of its pieces, the plan-wide number of its file's first piece
    known_cards: set[tuple[int, int]]
    cutoff: datetime | None  # the stream cutoff when already recorded: such rows are not written
    card_lives: CardLives | None = None  # rows outside their card's life are flagged (kept)


@dataclass
class ShardResult:
    quarantine: QuarantineRecorder
    accepted: int
    skipped: bool  # done by an earlier run: read again for its quarantine and counts, nothing written
    files: list[dict[str, Any]]  # {"uri", "year", "month", "rows", "max_ts"} of each partition file
    timestamps: np.ndarray | None = None  # `ts` (int64 seconds) of every accepted row, without a cutoff
    stream_rows: int = 0  # accepted rows at or after the cutoff (with a cutoff)


_worker: dict[str, Any] = {}


def backends_for(settings: Settings) -> Backends:
    """One `Backends` per process (workers reuse theirs across shards)."""
    b = _worker.get("backends")
    if b is None or b.settings != settings:
        b = _worker["backends"] = Backends(settings)
    return b


def set_piece_lines(values: Any) -> None:
    """Where this process publishes and finds the pieces' line counts (see `cdp.batch.lines`)."""
    _worker["lines"] = values


def set_progress(values: Any) -> None:
    """A shared array this process adds each shard's read bytes to (index = shard number)."""
    _worker["progress"] = values


def _blocks(piece: Piece, size: int) -> list[tuple[int, int]]:
    out = []
    with open(piece.path, "rb") as f:
        position = piece.start
        while position < piece.end:
            cut = line_end_at_or_after(f, position + size, piece.end)
            out.append((position, cut))
            position = cut
    return out


def _read_piece(
    piece: Piece, known_cards: set[tuple[int, int]], recorder: QuarantineRecorder, progress: Any, shard: int
) -> tuple[list[pa.Table], int]:
    """The piece's accepted rows (TRANSACTIONS_SCHEMA, one table per block or less) with lines as if the
    piece began at line 2 (quarantine records alike), and the number of lines it holds."""
    parts: list[pa.Table] = []
    line = 2
    for start, end in _blocks(piece, READ_BYTES):
        segment = Segment(start, end, line)
        table = read_valid_segment(piece.path, segment, known_cards, dictionary_text=True)
        if table is not None:
            recorder.stats_for(piece.path.name).add(table.num_rows, 0)
            parts.append(table)
            line += table.num_rows
        else:
            parts.extend(
                map(as_dictionary_text, read_text_segment(piece.path, recorder, known_cards, segment))
            )
            line += count_line_ends(piece.path, start, end)
        if progress is not None:
            progress[shard] += end - start
    return parts, line - 2


def _shift_lines(table: pa.Table, by: int) -> pa.Table:
    if by == 0:
        return table
    i = table.schema.get_field_index("line")
    return table.set_column(i, "line", pc.add(table["line"], pa.scalar(by, pa.int64())))


def _timestamps(parts: list[pa.Table]) -> np.ndarray:
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([chunk.to_numpy().view(np.int64) for t in parts for chunk in t["ts"].chunks])


@dataclass
class _Block:
    """Rows of one block kept until the shard is written: in partition order, narrow (a card number
    instead of ids; tokens, `event_seq` and `txn_id` are made per partition, just before it is encoded)."""

    rows: pa.Table
    runs: list[tuple[int, int, int]]  # (month since 1970-01, start, length)


def _numbered(
    file: str,
    clean: pa.Table,
    cards: CardNumbers,
    recorder: QuarantineRecorder,
    lives: CardLives | None = None,
) -> pa.Table:
    """Clean rows with a card number instead of ids; rows of erased customers are quarantined, the others
    outside their card's life flagged."""
    numbers = cards.numbers(clean["user"], clean["card"])
    rows = clean.drop_columns(["user", "card"]).append_column("card_number", numbers)
    erased = cards.erased_rows(numbers)
    if lives is not None:
        flag_outside(clean if erased is None else clean.filter(pa.array(~erased)), lives, file, recorder)
    if erased is None:
        return rows
    for line in np.asarray(rows["line"])[erased].tolist():
        recorder.add(file, line, None, ERASED_REASON, None)  # no raw text: it holds the ids
    recorder.stats_for(file).add(-int(erased.sum()), int(erased.sum()))
    return rows.filter(pa.array(~erased))


def _block(rows: pa.Table) -> _Block:
    ordered, months = partition_order(rows)
    return _Block(ordered, month_runs(months))


def run_shard(task: ShardTask, settings: Settings) -> ShardResult:
    """Read, validate, protect and write one shard (in a worker process, or in the job's own)."""
    b = backends_for(settings)
    writer = LakeWriter(b.object_store, settings.lake_bucket)
    shard = task.shard
    recorder = QuarantineRecorder()
    lines = _worker.get("lines")
    progress = _worker.get("progress")
    read: list[tuple[QuarantineRecorder, list[pa.Table]]] = []
    for i, piece in enumerate(shard.pieces):
        own = QuarantineRecorder()
        tables_read, count = _read_piece(piece, task.known_cards, own, progress, shard.index)
        publish_count(lines, task.first_piece + i, count)
        read.append((own, tables_read))
    cards = CardNumbers(b.protector)
    parts: list[pa.Table] = []
    for i, (piece, (own, tables_read)) in enumerate(zip(shard.pieces, read, strict=True)):
        what = f"{piece.path.name} from byte {piece.start}"
        first = first_line(lines, task.file_starts[i], task.first_piece + i, what)
        own.replay_into(recorder, line_offset=first - 2)
        while tables_read:
            shifted = _shift_lines(tables_read.pop(0), first - 2)
            parts.append(_numbered(piece.path.name, shifted, cards, recorder, task.card_lives))
    del read
    accepted = sum(t.num_rows for t in parts)
    timestamps = _timestamps(parts) if task.cutoff is None else None
    stream = 0
    if task.cutoff is not None:
        bound = pa.scalar(task.cutoff, pa.timestamp("s"))
        kept = [t.filter(pc.less(t["ts"], bound)) for t in parts]
        stream = accepted - sum(t.num_rows for t in kept)
        parts = kept

    done = writer.done(JOB, shard.name)
    if done is not None and done.get("accepted") == accepted and done.get("format") == LAYOUT:
        return ShardResult(recorder, accepted, True, done["files"], timestamps, stream)

    blocks = []
    while parts:
        blocks.append(_block(parts.pop(0)))
    files = write_partitions(b, settings, blocks, cards, shard.name)
    writer.mark_done(
        JOB, shard.name, {"shard": shard.name, "accepted": accepted, "files": files, "format": LAYOUT}
    )
    return ShardResult(recorder, accepted, False, files, timestamps, stream)


def partition_file_uri(bucket: str, year: int, month: int, shard_name: str) -> str:
    location = tables.TRANSACTIONS.location(bucket)
    return f"{location}year={year}/month={month}/part-{LABEL}-{shard_name}.parquet"


_DATA_SCHEMA = pa.schema(
    [f for f in tables.TRANSACTIONS_LAKE_SCHEMA if f.name not in tables.TRANSACTIONS.partition_keys]
)


def _lake_rows(rows: pa.Table, cards: CardNumbers) -> pa.Table:
    """One partition's kept rows as the lake's data columns (the partition keys are in its path)."""
    columns = {
        **cards.columns(rows["card_number"], rows["line"]),
        **{name: rows[name] for name in rows.column_names if name not in ("line", "card_number")},
    }
    for name in DICTIONARY_TEXT_COLUMNS:  # written as plain strings (Parquet dictionary-encodes them anyway)
        columns[name] = pc.cast(columns[name], pa.string())
    return pa.table([columns[f.name] for f in _DATA_SCHEMA], schema=_DATA_SCHEMA)


def write_partitions(
    b: Backends, settings: Settings, blocks: list[_Block], cards: CardNumbers, shard_name: str
) -> list[dict[str, Any]]:
    """Each partition's rows of the shard's `blocks` as one file; returns the files written."""
    pieces: dict[int, list[pa.Table]] = {}
    for block in blocks:
        for month, start, length in block.runs:
            pieces.setdefault(month, []).append(block.rows.slice(start, length))
    files: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as uploads:
        pending = []
        for month in sorted(pieces):
            year, month_of_year = year_month(month)
            part = _lake_rows(pa.concat_tables(pieces.pop(month)), cards)
            uri = partition_file_uri(settings.lake_bucket, year, month_of_year, shard_name)
            data = partition_file_bytes(part, DICTIONARY_COLUMNS)
            max_ts = pc.max(part["ts"]).cast(pa.int64()).as_py()
            files.append(
                {"uri": uri, "year": year, "month": month_of_year, "rows": part.num_rows, "max_ts": max_ts}
            )
            pending.append(uploads.submit(b.object_store.put_bytes, uri, data))
        for upload in pending:
            upload.result()
    return files
