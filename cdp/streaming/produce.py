"""The stream producer: replays the newest ~5% of transactions in time order, as core banking would emit them.

Each transaction goes first into the core-banking store (it "arrives" there), then through the same
extraction/protection code as the batch path, then onto the stream partitioned by card token (so a card's
events stay in order on one shard). Progress is recorded after every acknowledged put, so a restarted
producer continues where it stopped; the few records of an interrupted put may be sent twice, which the
consumers absorb because they write idempotently by `txn_id`.

Transactions of an erased customer (core banking holds their tombstone) are neither stored in core banking
nor sent: each goes to a quarantine entry (file, line, reason "erased"; nothing of the row) under
`<state>/producer-erased/`, one Parquet file per batch that had any, written before the batch's progress is
recorded. Every replayed row is counted once: rows read = sent + erased.
A customer whose token secret is shredded (no token can be made for them) counts as erased too.

Rows dated outside their card's life (before its account-open month, after its expiry month) are sent
like any other and counted (`flagged`), by the same rule as the batch job (`cdp.ibm.card_life`), whose
`flagged.parquet` lists them with the rest of the file's. With a stream fraction of 0 there is nothing
to replay: a run sends nothing and reports a total of 0.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.corebanking.tombstones import erased_mask, erased_users, quarantine_erased
from cdp.ibm.card_life import CardLives
from cdp.ibm.quarantine import Quarantine, read_quarantine
from cdp.ibm.reader import card_keys, find_source_files, iter_transactions, read_cards
from cdp.ibm.schema import TRANSACTIONS_SCHEMA
from cdp.lake.split import load_or_compute_split, recorded_split, source_name
from cdp.lake.transactions import protect_transactions_for_lake
from cdp.stream.port import Record
from cdp.stream.producer import put_all
from cdp.streaming import records
from cdp.streaming.drift_injection import DriftScenario
from cdp.streaming.source_cache import read_cached, source_fingerprint, write_cache

BATCH = 500


@dataclass
class ProduceReport:
    total: int  # stream transactions in the source (ts >= cutoff, accepted rows)
    sent: int  # sent by this run
    already_sent: int  # replay position reached by earlier runs (rows sent or quarantined as erased)
    cutoff: datetime
    seconds: float
    drift: dict[str, object] | None = None  # the injected drift scenario, if any
    drift_rows: int = 0  # rows changed by it, this run and earlier ones
    erased: int = 0  # rows of erased customers quarantined by this run (read = sent + erased)
    flagged: int = 0  # rows sent by this run dated outside their card's life (kept, as in the batch job)


def _from(table: pa.Table, cutoff: datetime) -> pa.Table:
    return table.filter(pc.greater_equal(table["ts"], pa.scalar(cutoff, pa.timestamp("s"))))


def stream_rows(source_dir: Path, b: Backends) -> tuple[pa.Table, datetime]:
    """The accepted source transactions at or after the split cutoff, in time order."""
    rows, cutoff, _ = _stream_source(source_dir, b)
    return rows, cutoff


def _stream_source(source_dir: Path, b: Backends) -> tuple[pa.Table, datetime, CardLives]:
    """`stream_rows`, and the cards' lives. With a recorded split the rows come from the state folder's
    copy of the stream part when it was made from these same sources (`cdp.streaming.source_cache`)."""
    s = b.settings
    found = find_source_files(source_dir)
    if found.cards is None or not found.transactions:
        raise FileNotFoundError(f"{source_dir}: need sd254_cards.csv and a transactions file")
    state_file, source = s.state_dir / "split.json", source_name(list(found.transactions))
    # With a recorded split only the stream's rows are kept while reading; without one, every accepted
    # timestamp is needed once to compute it.
    known_split = recorded_split(state_file, source, s.stream_fraction)
    if known_split is not None:
        fingerprint = source_fingerprint(
            [found.cards, *found.transactions], known_split.cutoff, s.stream_fraction
        )
        cached = read_cached(s.state_dir, fingerprint)
        if cached is not None:
            # The rejected rows were quarantined by the run that read the source: this one only needs the
            # cards' lives, read with a quarantine of its own that is thrown away.
            with tempfile.TemporaryDirectory() as scratch, Quarantine(Path(scratch)) as quarantine:
                cards = read_cards(found.cards, quarantine)
            return cached, known_split.cutoff, CardLives(cards)
    parts = []
    # Rows that fail validation are the batch job's to quarantine; here they are only counted apart.
    with Quarantine(s.state_dir / "producer-quarantine") as quarantine:
        cards = read_cards(found.cards, quarantine)
        known = card_keys(cards)
        for path in found.transactions:
            for chunk in iter_transactions(path, quarantine, known):
                parts.append(chunk if known_split is None else _from(chunk, known_split.cutoff))
    table = pa.concat_tables(parts) if parts else TRANSACTIONS_SCHEMA.empty_table()
    split = known_split or load_or_compute_split(state_file, source, s.stream_fraction, lambda: table["ts"])
    table = _from(table, split.cutoff)
    # Time order, ties kept in file order (the sort is stable on the line number).
    table = table.sort_by([("ts", "ascending"), ("line", "ascending")]).combine_chunks()
    fingerprint = source_fingerprint([found.cards, *found.transactions], split.cutoff, s.stream_fraction)
    write_cache(s.state_dir, fingerprint, table)
    return table, split.cutoff, CardLives(cards)


def produce(
    source_dir: Path,
    backends: Backends | None = None,
    rate: float | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    drift: DriftScenario | None = None,
    upto: int | None = None,
) -> ProduceReport:
    """Replay the stream part of `source_dir` (at `rate` events/s, or as fast as possible), at most `limit`
    events in this run and never past position `upto` of the replay.

    With `drift`, rows from the scenario's start position on are changed before they reach core banking
    (`cdp.streaming.drift_injection`); the scenario and the rows it changed are kept in the producer's
    state, and a later run of the same replay without `drift` keeps injecting the recorded scenario."""
    b = backends or Backends()
    t0 = time.perf_counter()
    rows, cutoff, lives = _stream_source(source_dir, b)
    state_file = b.settings.state_dir / "stream-producer.json"
    key = {"stream": b.settings.stream_name, "cutoff": cutoff.isoformat()}
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    same_run = {k: state.get(k) for k in key} == key
    already = state.get("sent", 0) if same_run else 0
    if drift is None and same_run and state.get("drift"):
        drift = DriftScenario(**state["drift"])  # a resumed replay keeps injecting what it injected
    drift_doc = drift.to_dict() if drift is not None else None
    drift_rows = state.get("drift_rows", 0) if same_run and state.get("drift") == drift_doc else 0
    end = rows.num_rows if limit is None else min(rows.num_rows, already + limit)
    if upto is not None:
        end = min(end, max(upto, already))  # `upto`: stop at this position of the replay
    sent = erased = flagged = 0
    source = source_name(list(find_source_files(source_dir).transactions))
    for start in range(already, end, BATCH):
        batch = rows.slice(start, min(BATCH, end - start))
        read = batch.num_rows
        if drift is not None:
            batch, changed = drift.apply(batch, start, rows.num_rows)
            drift_rows += changed
        # Tombstones are read per batch: an erasure during a long replay takes effect at the next batch.
        batch = _without_erased(b, batch, _erased_in(b, batch), source, start)
        if batch.num_rows:
            flagged += int(lives.outside(batch).sum())
            _to_core_banking(b, batch)
            lake_rows = protect_transactions_for_lake(b.protector, batch).to_pylist()
            put_all(b.stream, [Record(r["card_token"], records.encode(r)) for r in lake_rows])
        sent += batch.num_rows
        erased += read - batch.num_rows
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        position = already + sent + erased
        progress_doc = {"sent": position, "drift": drift_doc, "drift_rows": drift_rows}
        tmp.write_text(json.dumps({**key, **progress_doc}))
        tmp.replace(state_file)
        if progress is not None:
            progress(position, rows.num_rows)
        if rate:
            target = sent / rate
            elapsed = time.perf_counter() - t0
            if target > elapsed:
                time.sleep(target - elapsed)
    return ProduceReport(
        rows.num_rows, sent, already, cutoff, time.perf_counter() - t0, drift_doc, drift_rows, erased, flagged
    )


ERASED_QUARANTINE = "producer-erased"


def _erased_in(b: Backends, batch: pa.Table) -> set[int]:
    """Users of the batch to leave out: core banking holds their tombstone, or their token secret is gone."""
    gone = erased_users(b.oltp)
    shredded = b.protector.tokens.erased_rows(batch["user"])
    if shredded is not None:
        gone |= set(pc.filter(batch["user"], pa.array(shredded)).to_pylist())
    return gone


def _without_erased(b: Backends, batch: pa.Table, erased: set[int], source: str, start: int) -> pa.Table:
    """The batch without the rows of erased customers, which go to this batch's own quarantine file."""
    if not pc.any(erased_mask(batch, erased)).as_py():
        return batch
    with Quarantine(b.settings.state_dir / ERASED_QUARANTINE / f"from-{start:012d}") as quarantine:
        return quarantine_erased(batch, erased, quarantine, source)


def read_erased_quarantine(b: Backends) -> pa.Table:
    """Every "erased" quarantine entry of the producer (one per replayed row, whichever run wrote it)."""
    root = b.settings.state_dir / ERASED_QUARANTINE
    parts = [read_quarantine(d) for d in sorted(root.glob("from-*"))] if root.is_dir() else []
    table = pa.concat_tables(parts) if parts else read_quarantine(root)
    if table.num_rows == 0:
        return table
    # A batch replayed after a crash may have been quarantined by two runs: one entry per (file, line).
    seen: set[tuple[str, int]] = set()
    keep = []
    for file, line in zip(table["file"].to_pylist(), table["line"].to_pylist(), strict=True):
        keep.append((file, line) not in seen)
        seen.add((file, line))
    return table.filter(pa.array(keep))


def _to_core_banking(b: Backends, batch: pa.Table) -> None:
    b.oltp.put_transactions(batch.to_pylist())
