"""The batch job (~95% of history): read -> validate/quarantine -> protect -> partitioned Parquet -> catalog.

Chunked and resumable, in two phases:
1. stage: the transactions file is read in chunks of a fixed byte size, so chunk `k` is the same rows on
   every run; each protected chunk is written in partition order as one staging object
   (`cdp.lake.publish.staged_chunk_bytes`) and then marked done by a manifest. A re-run after a crash
   skips chunks marked done and rewrites (replaces, never appends) the one in flight.
2. split + publish: the stream cutoff is computed over the staged rows (`cdp.lake.split`, once), and the
   staged rows before it are rewritten as one set of files per `year=/month=` partition
   (`cdp.lake.publish`); the publication is recorded. The staged chunks stay as the job's snapshot, so a
   re-run after any crash, or with the same source, can always re-publish from them.
No row is lost or duplicated whatever the point of a crash. Rows with `ts >= split.cutoff` belong to the
stream and are left out here.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.ibm.contacts import read_contacts
from cdp.ibm.quarantine import Quarantine, QuarantineRecorder
from cdp.ibm.reader import (
    Segment,
    find_source_files,
    iter_segments,
    iter_transactions,
    read_cards,
    read_users,
)
from cdp.ibm.schema import TRANSACTIONS_SCHEMA
from cdp.lake import tables
from cdp.lake.publish import (
    STAGED_FORMAT,
    publish_partitioned,
    staged_chunk_bytes,
    staged_column,
)
from cdp.lake.split import Split, load_or_compute_split, recorded_split, source_name
from cdp.lake.transactions import in_partition_order, protect_transactions_for_lake
from cdp.lake.writer import LakeWriter
from cdp.settings import Settings

JOB = "batch-transactions"
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


@dataclass
class BatchReport:
    """What a batch run did; `rows_read == rows_accepted + rows_quarantined` for every file."""

    files: dict[str, dict[str, int]] = field(default_factory=dict)
    customers: int = 0
    cards: int = 0
    batch_rows: int = 0  # transactions written to the lake by this job (all chunks, this run or earlier)
    stream_rows: int = 0  # accepted transactions left for the stream (ts >= cutoff)
    chunks: int = 0
    chunks_skipped: int = 0  # already done by an earlier (interrupted) run
    split: Split | None = None
    quarantine_path: Path | None = None
    published_files: int = 0  # partition files written by this run's publication (0: already published)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU per phase; workers count in staging


def _staging_uri(bucket: str, chunk: str) -> str:
    return f"s3://{bucket}/_staging/{JOB}/{chunk}.arrow"


def _legacy_staging_uri(bucket: str, chunk: str) -> str:
    """Where earlier versions of the job staged a chunk (as Parquet, in source order)."""
    return f"s3://{bucket}/_staging/{JOB}/{chunk}.parquet"


def _cpu_seconds() -> float:
    """CPU time of this process and of its ended child processes (the workers, once their pool is shut)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _data_bytes(source: Path) -> int:
    """Bytes of a source file after its header line (what its segments cover)."""
    with open(source, "rb") as f:
        return os.fstat(f.fileno()).st_size - len(f.readline())


def _chunk_name(source: Path, index: int) -> str:
    digest = hashlib.sha256(source.name.encode()).hexdigest()[:8]
    return f"{digest}-{index:06d}"


class BatchConfigChanged(RuntimeError):
    """The lake holds a run of this job made with other chunking or another split: resuming would mix them."""


def _check_job_identity(writer: LakeWriter, identity: dict[str, object]) -> None:
    recorded = writer.done(JOB, "_job")
    if recorded is None:
        writer.mark_done(JOB, "_job", identity)
    elif recorded != identity:
        changed = sorted(k for k in identity if recorded.get(k) != identity[k])
        raise BatchConfigChanged(
            f"the lake's transactions were written by a batch run with different {', '.join(changed)} "
            f"({', '.join(f'{k}={recorded.get(k)}' for k in changed)}); resume with the same settings, "
            "or clear the lake's transactions table and its manifests to rebuild it"
        )


@dataclass(frozen=True)
class SegmentTask:
    source: Path
    name: str
    segment: Segment
    known_cards: set[tuple[int, int]]


@dataclass
class SegmentResult:
    quarantine: QuarantineRecorder
    accepted: int
    skipped: bool


_worker: dict[str, object] = {}


def _backends_for(settings: Settings) -> Backends:
    """One `Backends` per process (workers reuse theirs across segments)."""
    b = _worker.get("backends")
    if b is None or b.settings != settings:
        b = _worker["backends"] = Backends(settings)
    return b


def process_segment(task: SegmentTask, settings: Settings) -> SegmentResult:
    """Read, validate, protect and stage one segment of a transactions file (in a worker process)."""
    b = _backends_for(settings)
    writer = LakeWriter(b.object_store, settings.lake_bucket)
    recorder = QuarantineRecorder()
    parts = list(
        iter_transactions(
            task.source, recorder, task.known_cards, settings.batch_chunk_bytes, segment=task.segment
        )
    )
    chunk = pa.concat_tables(parts) if parts else TRANSACTIONS_SCHEMA.empty_table()
    done = writer.done(JOB, task.name)
    if done is not None and done["rows"] == chunk.num_rows and done.get("format") == STAGED_FORMAT:
        return SegmentResult(recorder, chunk.num_rows, skipped=True)
    lake_rows = protect_transactions_for_lake(b.protector, in_partition_order(chunk))
    b.object_store.put_bytes(
        _staging_uri(settings.lake_bucket, task.name),
        staged_chunk_bytes(lake_rows, tables.TRANSACTIONS.partition_keys),
    )
    b.object_store.delete(_legacy_staging_uri(settings.lake_bucket, task.name))
    writer.mark_done(
        JOB, task.name, {"chunk": task.name, "rows": lake_rows.num_rows, "format": STAGED_FORMAT}
    )
    return SegmentResult(recorder, lake_rows.num_rows, skipped=False)


def _staged_timestamps(b: Backends, uris: list[str]) -> pa.ChunkedArray:
    """The `ts` column of every staged chunk."""
    return staged_column(b.object_store, uris, "ts").cast(pa.timestamp("s"))


def _start_worker(parent: int, settings: Settings) -> None:
    """Worker initializer: end the worker when the job's process is gone (killed, not shut down), rather
    than wait for work forever; then load what every segment needs (the keys, Arrow's lazy imports) while
    the job's process is still reading customers and cards."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    try:
        # A fresh process's first segment costs ~0.5 CPU-s more with Arrow's default allocator (mimalloc:
        # page faults as it maps its first arenas) than with jemalloc; later segments cost the same.
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # an Arrow build without jemalloc: keep the default
        pass
    try:
        _backends_for(settings).protector  # noqa: B018 - a cached property: loads the keys once
        pa.array([0], pa.int64())  # Arrow imports its pandas shim on the first conversion from Python objects
    except Exception:  # noqa: BLE001 - the first segment meets the same error and reports it
        pass


def _ready() -> None:
    """A no-op task: submitting one per worker starts the worker processes."""


@contextmanager
def _worker_pool(settings: Settings, segments_expected: int) -> Iterator[ProcessPoolExecutor | None]:
    """`settings.workers` processes, started at once so they get ready while the job does other work;
    None (segments run in-process) with one worker or when at most one segment is expected."""
    if settings.workers <= 1 or segments_expected <= 1:
        yield None
        return
    with ProcessPoolExecutor(
        max_workers=settings.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), settings),
    ) as pool:
        for _ in range(settings.workers):
            pool.submit(_ready)
        yield pool


def _run_segments(
    tasks: Iterable[SegmentTask], settings: Settings, pool: ProcessPoolExecutor | None
) -> Iterator[tuple[SegmentTask, SegmentResult]]:
    """(task, result) in task order; segments run in the `pool`'s processes (in-process when None).

    `tasks` is read lazily, as segments are handed out, so planning the file overlaps the work.
    A new segment is handed out as soon as any worker finishes one (not only when the oldest is done),
    with at most `2 * workers` segments running or queued and `4 * workers` results held for ordering.
    """
    tasks = iter(tasks)
    if pool is None:
        for task in tasks:
            yield task, process_segment(task, settings)
        return
    in_flight, held = settings.workers * 2, settings.workers * 4
    ordered: deque[tuple[SegmentTask, Future[SegmentResult]]] = deque()
    running: set[Future[SegmentResult]] = set()

    def hand_out() -> None:
        while len(running) < in_flight and len(ordered) < held:
            task = next(tasks, None)
            if task is None:
                return
            future = pool.submit(process_segment, task, settings)
            ordered.append((task, future))
            running.add(future)

    try:
        hand_out()
        while ordered:
            task, future = ordered[0]
            if not future.done():
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                running.difference_update(finished)
                hand_out()
                continue
            ordered.popleft()
            running.discard(future)
            yield task, future.result()
            hand_out()
    except BaseException:
        for _, future in ordered:
            future.cancel()
        raise


def _count_from(b: Backends, staged: list[str], cutoff: datetime) -> int:
    """Staged rows at or after the cutoff (when the recorded split was computed over other rows)."""
    ts = _staged_timestamps(b, staged)
    return int(pc.sum(pc.greater_equal(ts, pa.scalar(cutoff, ts.type))).as_py() or 0)


def run_batch(
    source_dir: Path,
    backends: Backends | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_bytes: int | None = None,
) -> BatchReport:
    """Run (or resume) the batch job over the IBM files in `source_dir`."""
    b = backends or Backends()
    s = b.settings
    chunk_bytes = chunk_bytes or s.batch_chunk_bytes
    found = find_source_files(source_dir)
    if found.users is None or found.cards is None or not found.transactions:
        raise FileNotFoundError(
            f"{source_dir}: need sd254_users.csv, sd254_cards.csv and a transactions file "
            f"(found users={found.users is not None}, cards={found.cards is not None}, "
            f"transactions={len(found.transactions)})"
        )
    writer = LakeWriter(b.object_store, s.lake_bucket)
    protector = b.protector
    report = BatchReport()
    if chunk_bytes != s.batch_chunk_bytes:
        s = s.model_copy(update={"batch_chunk_bytes": chunk_bytes})
    source = source_name(list(found.transactions))
    _check_job_identity(writer, {"source": source, "chunk_bytes": chunk_bytes})

    clock, cpu = time.perf_counter(), _cpu_seconds()

    def lap(phase: str) -> None:
        nonlocal clock, cpu
        now, cpu_now = time.perf_counter(), _cpu_seconds()
        report.seconds[phase] = round(now - clock, 3)
        report.cpu_seconds[phase] = round(cpu_now - cpu, 3)
        clock, cpu = now, cpu_now

    data_bytes = [_data_bytes(path) for path in found.transactions]
    segments_expected = sum(max(1, -(-n // chunk_bytes)) for n in data_bytes)
    with Quarantine(s.quarantine_dir) as quarantine, _worker_pool(s, segments_expected) as pool:
        users = read_users(found.users, quarantine)
        contacts = read_contacts(source_dir)
        if contacts is not None:
            users = users.join(contacts, "user", join_type="left outer").sort_by("user")
        cards = read_cards(found.cards, quarantine, known_users=set(users["user"].to_pylist()))
        writer.replace_table(tables.CUSTOMERS, protector.protect_users(users))
        writer.replace_table(tables.CARDS, protector.protect_cards(cards))
        report.customers, report.cards = users.num_rows, cards.num_rows
        known_cards = set(zip(cards["user"].to_pylist(), cards["card_index"].to_pylist(), strict=True))
        lap("customers_and_cards")

        tasks = (
            SegmentTask(path, _chunk_name(path, index), segment, known_cards)
            for path in found.transactions
            for index, segment in enumerate(iter_segments(path, chunk_bytes))
        )
        chunk_names: list[str] = []
        total_bytes = sum(data_bytes)
        done_bytes = accepted = 0
        for task, result in _run_segments(tasks, s, pool):
            result.quarantine.replay_into(quarantine)
            chunk_names.append(task.name)
            report.chunks += 1
            report.chunks_skipped += result.skipped
            accepted += result.accepted
            if progress is not None:
                done_bytes += task.segment.end - task.segment.start
                progress(done_bytes, total_bytes)
        if progress is not None:
            progress(total_bytes, total_bytes)
        report.files = {name: st.to_dict() for name, st in quarantine.stats.items()}
        report.quarantine_path = quarantine.path
    lap("stage_transactions")

    staged = [_staging_uri(s.lake_bucket, n) for n in chunk_names]
    published = writer.done(JOB, "_published")
    if published is not None and published.get("accepted") == accepted:
        report.split = recorded_split(s.state_dir / "split.json", source, s.stream_fraction)
        report.batch_rows, report.stream_rows = published["batch_rows"], published["stream_rows"]
    else:
        split = load_or_compute_split(
            s.state_dir / "split.json", source, s.stream_fraction, lambda: _staged_timestamps(b, staged)
        )
        files = publish_partitioned(
            b.object_store,
            tables.TRANSACTIONS,
            s.lake_bucket,
            staged,
            "batch",
            before=split.cutoff,
            dictionary_columns=DICTIONARY_COLUMNS,
        )
        report.split, report.published_files = split, files
        report.stream_rows = (
            split.stream_rows if split.rows == accepted else _count_from(b, staged, split.cutoff)
        )
        report.batch_rows = accepted - report.stream_rows
        writer.mark_done(
            JOB,
            "_published",
            {
                "accepted": accepted,
                "batch_rows": report.batch_rows,
                "stream_rows": report.stream_rows,
                "files": files,
                "cutoff": split.cutoff.isoformat(),
            },
        )

    lap("split_and_publish")
    for table in tables.ALL_TABLES:
        b.catalog.register_table(table.info(s.lake_bucket))
    return report
