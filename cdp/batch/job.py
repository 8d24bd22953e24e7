"""The batch job (~95% of history): read -> validate/quarantine -> protect -> partitioned Parquet -> catalog.

Sharded and resumable:
1. plan: the transactions files are cut into equal shards on line ends (`cdp.batch.plan`), a multiple
   of the worker count; the plan is recorded once and every resumed run reuses it.
2. shards: each worker reads, validates, protects and writes its shard straight into the lake, one
   Parquet file per `year=/month=` partition (`cdp.batch.shard`), then marks the shard done. There is no
   staging copy of the rows: each row is parsed once and encoded once. A re-run after a crash skips done
   shards (reading them again only for their quarantine records and counts) and rewrites, by replacing
   its files, the shard in flight.
3. split and trim: the stream cutoff is computed over the accepted rows (`cdp.lake.split`, once, then
   recorded) and the rows at or after it are taken out of the newest partitions (`cdp.batch.trim`); the
   publication is recorded. When the cutoff is already recorded, the shards leave those rows out.
No row is lost or duplicated whatever the point of a crash. Rows with `ts >= split.cutoff` belong to the
stream and are left out here. Accepted rows dated outside their card's life are kept and flagged
(`cdp.ibm.card_life`; listed in `flagged.parquet` beside the quarantine, counted per file).
Rows (customers, cards, transactions) of erased customers are quarantined with
the reason "erased": their tokens cannot be made any more. The job's identity records the token scheme, so a
lake written with other tokens is never resumed (`BatchConfigChanged`).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdp.aggregates.refresh import refresh_quietly
from cdp.backends import Backends
from cdp.batch.lines import PieceLines, file_starts, first_piece, shared_counters
from cdp.batch.plan import Shard, plan_from_record, plan_record, plan_shards
from cdp.batch.shard import (
    DICTIONARY_COLUMNS,
    JOB,
    LABEL,
    LAYOUT,
    ShardResult,
    ShardTask,
    backends_for,
    run_shard,
    set_piece_lines,
    set_progress,
)
from cdp.batch.trim import remove_stale_files, trim_to_cutoff
from cdp.ibm.card_life import CardLives
from cdp.ibm.contacts import read_contacts
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import find_source_files, read_cards, read_users
from cdp.ibm.rows import check_header
from cdp.ibm.schema import TRANSACTIONS_HEADER
from cdp.lake import tables
from cdp.lake.split import Split, load_or_compute_split, recorded_split, source_name
from cdp.lake.transactions import ERASED_REASON
from cdp.lake.writer import LakeWriter
from cdp.security.protector import Protector
from cdp.security.tokens import TOKEN_SCHEME
from cdp.settings import Settings

__all__ = ["JOB", "BatchConfigChanged", "BatchReport", "run_batch"]


@dataclass
class BatchReport:
    """What a batch run did; `rows_read == rows_accepted + rows_quarantined` for every file, of which
    `rows_flagged` accepted rows are flagged (kept): dated outside their card's life (the whole file's,
    stream part included, like the quarantine; listed in `flagged_path`)."""

    files: dict[str, dict[str, int]] = field(default_factory=dict)
    customers: int = 0
    cards: int = 0
    batch_rows: int = 0  # transactions in the lake from this job (all shards, this run or earlier)
    stream_rows: int = 0  # accepted transactions left for the stream (ts >= cutoff)
    chunks: int = 0  # shards of the plan
    chunks_skipped: int = 0  # shards already done by an earlier (interrupted) run
    split: Split | None = None
    quarantine_path: Path | None = None
    flagged_path: Path | None = None
    published_files: int = 0  # partition files in the lake after this run's trim (0: published before)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # CPU per phase; workers count in shards


def _cpu_seconds() -> float:
    """CPU time of this process and of its ended child processes (the workers, once their pool is shut)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


class BatchConfigChanged(RuntimeError):
    """The lake holds a run of this job made with another plan or layout: resuming would mix them."""


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


def _without_erased(protector: Protector, table: pa.Table, file: str, quarantine: Quarantine) -> pa.Table:
    """`table` (users or cards, with `user` and `line`) without the rows of erased customers, which are
    quarantined (no raw text: these files hold personal data)."""
    erased = protector.tokens.erased_rows(table["user"])
    if erased is None:
        return table
    for line in table["line"].to_numpy()[erased].tolist():
        quarantine.add(file, line, None, ERASED_REASON, None)
    quarantine.stats_for(file).add(-int(erased.sum()), int(erased.sum()))
    return table.filter(pa.array(~erased))


def _plan(writer: LakeWriter, files: Sequence[Path], shard_bytes: int, workers: int) -> list[Shard]:
    """The recorded plan, or a new one (recorded before any shard is written)."""
    recorded = writer.done(JOB, "_plan")
    if recorded is not None:
        return plan_from_record(recorded["shards"], files)
    shards = plan_shards(files, shard_bytes, workers)
    writer.mark_done(JOB, "_plan", {"shards": plan_record(shards)})
    return shards


def _start_worker(parent: int, settings: Settings, lines: Any, progress: Any) -> None:
    """Worker initializer: end the worker when the job's process is gone (killed, not shut down), rather
    than wait for work forever; then load what every shard needs (the keys, Arrow's lazy imports) while
    the job's process is still reading customers and cards."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
    set_piece_lines(lines)
    set_progress(progress)
    try:
        # A fresh process's first block costs ~0.5 CPU-s more with Arrow's default allocator (mimalloc:
        # page faults as it maps its first arenas) than with jemalloc; later blocks cost the same.
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # an Arrow build without jemalloc: keep the default
        pass
    try:
        backends_for(settings).protector  # noqa: B018 - a cached property: loads the keys once
        pa.array([0], pa.int64())  # Arrow imports its pandas shim on the first conversion from Python objects
    except Exception:  # noqa: BLE001 - the first shard meets the same error and reports it
        pass


# Allocator settings of the worker processes (read by the allocators when a process starts). A shard's
# blocks allocate and free the same sizes over and over; returning freed pages to the OS at once (Arrow's
# jemalloc after 1 s, glibc for every block of 32 MB or more) made each block fault its memory in again:
# 2.7M page faults, a quarter of the workers' CPU time, at full size. Workers keep their pages instead
# and give them back when they end, with the job.
WORKER_ALLOCATOR_ENVIRONMENT = {
    "JE_ARROW_MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1",
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in this process's environment (where not set already), for the processes started meanwhile."""
    added = [k for k in values if k not in os.environ]
    os.environ.update({k: values[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _ready() -> None:
    """A no-op task: submitting one per worker starts the worker processes."""


@contextmanager
def _worker_pool(
    settings: Settings, shards: int, lines: Any, progress: Any
) -> Iterator[ProcessPoolExecutor | None]:
    """`settings.workers` processes (at most one per shard), started at once so they get ready while the
    job does other work; None (shards run in-process) with one worker or one shard."""
    workers = min(settings.workers, shards)
    if workers <= 1:
        set_piece_lines(lines)
        set_progress(progress)
        yield None
        return
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), settings, lines, progress),
    ) as pool:
        with _environment(WORKER_ALLOCATOR_ENVIRONMENT):
            for _ in range(workers):  # each submission starts a worker, with the environment of now
                pool.submit(_ready)
        yield pool


def _start_shards(
    tasks: Sequence[ShardTask], settings: Settings, pool: ProcessPoolExecutor | None
) -> list[Future[ShardResult]] | None:
    """Hand every shard to the `pool` at once (None: they run in-process, when their results are asked)."""
    return None if pool is None else [pool.submit(run_shard, task, settings) for task in tasks]


def _shard_results(
    tasks: Sequence[ShardTask],
    futures: list[Future[ShardResult]] | None,
    settings: Settings,
    tick: Callable[[], None],
) -> Iterator[tuple[ShardTask, ShardResult]]:
    """(task, result) in task order; `tick` is called every fraction of a second meanwhile (progress)."""
    if futures is None:
        for task in tasks:
            yield task, run_shard(task, settings)
            tick()
        return
    try:
        for task, future in zip(tasks, futures, strict=True):
            while not future.done():
                wait([future], timeout=0.25, return_when=FIRST_COMPLETED)
                tick()
            yield task, future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        raise


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
    for path in found.transactions:
        check_header(path, TRANSACTIONS_HEADER, quote_found=True)
    writer = LakeWriter(b.object_store, s.lake_bucket)
    protector = b.protector
    report = BatchReport()
    source = source_name(list(found.transactions))
    identity = {"source": source, "chunk_bytes": chunk_bytes, "layout": LAYOUT, "tokens": TOKEN_SCHEME}
    _check_job_identity(writer, identity)
    shards = _plan(writer, found.transactions, chunk_bytes, s.workers)
    state_file = s.state_dir / "split.json"
    known = recorded_split(state_file, source, s.stream_fraction)

    clock, cpu = time.perf_counter(), _cpu_seconds()

    def lap(phase: str) -> None:
        nonlocal clock, cpu
        now, cpu_now = time.perf_counter(), _cpu_seconds()
        report.seconds[phase] = round(now - clock, 3)
        report.cpu_seconds[phase] = round(cpu_now - cpu, 3)
        clock, cpu = now, cpu_now

    lines = PieceLines(sum(len(shard.pieces) for shard in shards))
    starts = file_starts(shards)
    read_bytes = shared_counters(len(shards))
    total_bytes = sum(shard.bytes for shard in shards)

    def tick() -> None:
        if progress is not None:
            progress(min(total_bytes, sum(read_bytes)), total_bytes)

    results: list[ShardResult] = []
    with (
        Quarantine(s.quarantine_dir) as quarantine,
        _worker_pool(s, len(shards), lines.values, read_bytes) as pool,
    ):
        users = read_users(found.users, quarantine)
        contacts = read_contacts(source_dir, quarantine)
        if contacts is not None:
            users = users.join(contacts, "user", join_type="left outer").sort_by("user")
        cards = read_cards(found.cards, quarantine, known_users=set(users["user"].to_pylist()))
        known_cards = set(zip(cards["user"].to_pylist(), cards["card_index"].to_pylist(), strict=True))
        lives = CardLives(cards)
        cutoff = known.cutoff if known is not None else None
        tasks = []
        for shard in shards:
            first = first_piece(shards, shard)
            own_starts = tuple(starts[first : first + len(shard.pieces)])
            tasks.append(ShardTask(shard, first, own_starts, known_cards, cutoff, lives))
        # The workers start on the transactions while customers and cards are protected here.
        futures = _start_shards(tasks, s, pool)
        users = _without_erased(protector, users, found.users.name, quarantine)
        cards = _without_erased(protector, cards, found.cards.name, quarantine)
        writer.replace_table(tables.CUSTOMERS, protector.protect_users(users, s.customers_k_anonymity))
        writer.replace_table(tables.CARDS, protector.protect_cards(cards))
        report.customers, report.cards = users.num_rows, cards.num_rows
        lap("customers_and_cards")

        try:
            for _, result in _shard_results(tasks, futures, s, tick):
                result.quarantine.replay_into(quarantine)
                results.append(result)
                report.chunks += 1
                report.chunks_skipped += result.skipped
        except BaseException:
            lines.abort()  # no worker may wait for the lines of a shard that failed
            raise
        tick()
        report.files = {name: st.to_dict() for name, st in quarantine.stats.items()}
        report.quarantine_path = quarantine.path
        report.flagged_path = quarantine.flagged_path if quarantine.flagged else None
    lap("shards")

    accepted = sum(r.accepted for r in results)
    published = writer.done(JOB, "_published")
    if published is not None and published.get("accepted") == accepted and known is not None:
        report.split = known
        report.batch_rows, report.stream_rows = published["batch_rows"], published["stream_rows"]
    else:
        if known is None:
            timestamps = [r.timestamps for r in results if r.timestamps is not None]
            split = load_or_compute_split(state_file, source, s.stream_fraction, lambda: timestamps)
            stream_rows = split.stream_rows
        else:
            split, stream_rows = known, sum(r.stream_rows for r in results)
        files = trim_to_cutoff(
            b.object_store, [f for r in results for f in r.files], split.cutoff, DICTIONARY_COLUMNS
        )
        remove_stale_files(b.object_store, s.lake_bucket, LABEL, {f["uri"] for f in files})
        report.split, report.published_files = split, len(files)
        report.stream_rows = stream_rows
        report.batch_rows = accepted - stream_rows
        writer.mark_done(
            JOB,
            "_published",
            {
                "accepted": accepted,
                "batch_rows": report.batch_rows,
                "stream_rows": report.stream_rows,
                "files": len(files),
                "cutoff": split.cutoff.isoformat(),
            },
        )
    lap("split_and_trim")
    for table in tables.ALL_TABLES:
        b.catalog.register_table(table.info(s.lake_bucket))
    refresh_quietly(b, ("fraud",), after="the batch job")  # the dashboards' aggregates; never fatal
    return report
