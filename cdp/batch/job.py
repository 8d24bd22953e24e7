"""The batch job (~95% of history): read -> validate/quarantine -> protect -> partitioned Parquet -> catalog.

Chunked and resumable, in two phases:
1. stage: the transactions file is read in chunks of a fixed byte size, so chunk `k` is the same rows on
   every run; each protected chunk is written as one staging object and then marked done by a manifest.
   A re-run after a crash skips chunks marked done and rewrites (replaces, never appends) the one in
   flight.
2. publish: all staged chunks are rewritten as one set of files per `year=/month=` partition
   (`cdp.lake.publish`), the publication is recorded, then the staging objects are deleted.
No row is lost or duplicated whatever the point of a crash. Rows with `ts >= split.cutoff` belong to the
stream and are left out here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import find_source_files, iter_transactions, read_cards, read_users
from cdp.lake import tables
from cdp.lake.split import Split, load_or_compute_split
from cdp.lake.transactions import protect_transactions_for_lake
from cdp.lake.publish import publish_partitioned
from cdp.lake.writer import LakeWriter, parquet_bytes
from cdp.ibm.contacts import read_contacts

JOB = "batch-transactions"


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


def _staging_uri(bucket: str, chunk: str) -> str:
    return f"s3://{bucket}/_staging/{JOB}/{chunk}.parquet"


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
    split = load_or_compute_split(s.state_dir / "split.json", list(found.transactions), s.stream_fraction)
    report.split = split
    cutoff = pa.scalar(split.cutoff, pa.timestamp("s"))
    _check_job_identity(writer, {"source": split.source, "chunk_bytes": chunk_bytes,
                                 "cutoff": split.cutoff.isoformat()})

    with Quarantine(s.quarantine_dir) as quarantine:
        users = read_users(found.users, quarantine)
        contacts = read_contacts(source_dir)
        if contacts is not None:
            users = users.join(contacts, "user", join_type="left outer").sort_by("user")
        cards = read_cards(found.cards, quarantine, known_users=set(users["user"].to_pylist()))
        writer.replace_table(tables.CUSTOMERS, protector.protect_users(users))
        writer.replace_table(tables.CARDS, protector.protect_cards(cards))
        report.customers, report.cards = users.num_rows, cards.num_rows
        known_cards = set(zip(cards["user"].to_pylist(), cards["card_index"].to_pylist(), strict=True))

        chunk_names: list[str] = []
        total_bytes = sum(p.stat().st_size for p in found.transactions)
        done_bytes = 0
        for source in found.transactions:
            for index, chunk in enumerate(iter_transactions(source, quarantine, known_cards, chunk_bytes)):
                name = _chunk_name(source, index)
                is_stream = pc.greater_equal(chunk["ts"], cutoff)
                n_stream = pc.sum(is_stream).as_py() or 0
                report.stream_rows += n_stream
                report.chunks += 1
                done = writer.done(JOB, name)
                if done is not None and done["rows"] == chunk.num_rows - n_stream:
                    report.chunks_skipped += 1
                    report.batch_rows += done["rows"]
                else:
                    history = chunk.filter(pc.invert(is_stream))
                    lake_rows = protect_transactions_for_lake(protector, history)
                    b.object_store.put_bytes(_staging_uri(s.lake_bucket, name), parquet_bytes(lake_rows))
                    writer.mark_done(JOB, name, {"chunk": name, "rows": lake_rows.num_rows})
                    report.batch_rows += lake_rows.num_rows
                chunk_names.append(name)
                if progress is not None:
                    done_bytes = min(total_bytes, done_bytes + chunk_bytes)
                    progress(done_bytes, total_bytes)
        if progress is not None:
            progress(total_bytes, total_bytes)
        report.files = {name: st.to_dict() for name, st in quarantine.stats.items()}
        report.quarantine_path = quarantine.path

    published = writer.done(JOB, "_published")
    if published is None or published.get("rows") != report.batch_rows:
        staged = [_staging_uri(s.lake_bucket, n) for n in chunk_names]
        files = publish_partitioned(b.object_store, tables.TRANSACTIONS, s.lake_bucket, staged, "batch")
        writer.mark_done(JOB, "_published", {"rows": report.batch_rows, "files": files})
        report.published_files = files
    for uri in [_staging_uri(s.lake_bucket, n) for n in chunk_names]:
        b.object_store.delete(uri)

    for table in tables.ALL_TABLES:
        b.catalog.register_table(table.info(s.lake_bucket))
    return report
