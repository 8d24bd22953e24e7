"""The sharded batch job: the plan (equal shards on line ends, recorded), the counted first lines, the
lake equal to a reference built with the text reader, the stream cutoff applied by the shards or by the
trim, and stale files removed."""

from __future__ import annotations

from datetime import datetime
from multiprocessing.sharedctypes import RawArray
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.batch.lines import PieceLines, file_starts, first_line, publish_count
from cdp.batch.plan import plan_from_record, plan_record, plan_shards, shard_count
from cdp.batch.shard import DICTIONARY_COLUMNS, JOB
from cdp.batch.trim import trim_to_cutoff
from cdp.ibm.quarantine import QuarantineRecorder
from cdp.ibm.reader import iter_transactions, read_cards
from cdp.ibm.schema import TRANSACTIONS_FILE
from cdp.lake import tables
from cdp.lake.transactions import protect_transactions_for_lake
from cdp.lake.writer import partition_file_bytes
from cdp.settings import Settings
from cdp.synth.generator import generate


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=4, seed=23, workers=1)
    return out


def _first_lines(path: Path) -> dict[int, int]:
    """Byte offset of every line start -> its file line."""
    data = path.read_bytes()
    starts, line = {0: 1}, 1
    for i, byte in enumerate(data):
        if byte == 10:
            line += 1
            starts[i + 1] = line
    return starts


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shards_are_equal_cut_on_line_ends_and_as_many_as_a_multiple_of_the_workers(source, workers):
    csv = source / TRANSACTIONS_FILE
    data = csv.read_bytes()
    header = data.index(b"\n") + 1
    shards = plan_shards([csv], 40_000, workers)
    assert len(shards) == shard_count(len(data) - header, 40_000, workers) and len(shards) % workers == 0
    pieces = [p for s in shards for p in s.pieces]
    assert pieces[0].start == header and pieces[-1].end == len(data) and pieces[0].at_file_start
    for before, after in zip(pieces, pieces[1:], strict=False):
        assert before.end == after.start and data[after.start - 1] == ord("\n") and not after.at_file_start
    sizes = [s.bytes for s in shards]
    assert max(sizes) - min(sizes) <= 2 * max(len(line) for line in data.splitlines(keepends=True))
    assert plan_from_record(plan_record(shards), [csv]) == shards


def test_pieces_of_several_files_get_their_own_file_lines(source, tmp_path):
    """Per-user files cut into pieces across shards: each row keeps the line of its own file, counted by
    the workers that read the pieces before it."""
    folder = tmp_path / "per-user"
    folder.mkdir()
    for name in ("sd254_users.csv", "sd254_cards.csv"):
        (folder / name).write_bytes((source / name).read_bytes())
    text = (source / TRANSACTIONS_FILE).read_text().splitlines(keepends=True)
    bad = "0,0,2010,1,1,10:00,$1.x0,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n"
    parts = (text[1:1500], text[1500:1530], [*text[1530:2600], bad, *text[2600:4000]])
    for i, rows in enumerate(parts):
        (folder / f"User{i}_credit_card_transactions.csv").write_text(text[0] + "".join(rows))
    shards = plan_shards(sorted(folder.glob("User*")), 60_000, 2)
    assert len(shards) >= 4 and any(not p.at_file_start for s in shards for p in s.pieces)
    starts = file_starts(shards)
    assert starts[0] == 0 and all(starts[i] <= i for i in range(len(starts)))

    b = Backends(Settings(workers=2))
    report = run_batch(folder, b, chunk_bytes=60_000)
    quarantined = pq.read_table(report.quarantine_path).to_pylist()
    assert [(r["file"], r["line"]) for r in quarantined] == [("User2_credit_card_transactions.csv", 1072)]
    recorder = QuarantineRecorder()
    cards = read_cards(folder / "sd254_cards.csv", recorder)
    known = set(zip(cards["user"].to_pylist(), cards["card_index"].to_pylist(), strict=True))
    clean = pa.concat_tables(
        t
        for path in sorted(folder.glob("User*"))
        for t in iter_transactions(path, recorder, known, fast_path=False)
    )
    want = protect_transactions_for_lake(b.protector, clean)
    want = want.filter(pa.compute.less(want["ts"], pa.scalar(report.split.cutoff, pa.timestamp("s"))))
    columns = ", ".join(tables.TRANSACTIONS_LAKE_SCHEMA.names)
    got = b.catalog.query(f"SELECT {columns} FROM transactions ORDER BY ALL").to_pylist()
    con = duckdb.connect()
    con.register("want", want)
    assert got == con.sql(f"SELECT {columns} FROM want ORDER BY ALL").to_arrow_table().to_pylist()


def test_a_piece_starts_after_the_counted_lines_of_the_pieces_of_its_file_before_it():
    values = RawArray("q", [3, 4, -1, 7])
    assert first_line(values, 0, 0, "p0") == 2 and first_line(values, 0, 2, "p2") == 9
    assert first_line(values, 3, 3, "p3") == 2
    lines = PieceLines(2)
    publish_count(lines.values, 0, 10)
    lines.abort()
    with pytest.raises(RuntimeError, match="failed"):
        first_line(lines.values, 0, 2, "p2")


def _lake(b: Backends) -> list[dict]:
    root = b.settings.lake_dir / b.settings.lake_bucket / "transactions"
    pattern = str(root / "**" / "*.parquet").replace("'", "''")
    columns = ", ".join(tables.TRANSACTIONS_LAKE_SCHEMA.names)
    return (
        duckdb.connect()
        .sql(f"SELECT {columns} FROM read_parquet('{pattern}', hive_partitioning = true) ORDER BY txn_id")
        .fetchall()
    )


def _reference(source: Path, b: Backends, cutoff: datetime) -> list[tuple]:
    """The lake's rows built another way: the text reader over the whole file, the same protection, the
    rows before the cutoff, ordered by txn_id."""
    recorder = QuarantineRecorder()
    cards = read_cards(source / "sd254_cards.csv", recorder)
    known = set(zip(cards["user"].to_pylist(), cards["card_index"].to_pylist(), strict=True))
    clean = pa.concat_tables(iter_transactions(source / TRANSACTIONS_FILE, recorder, known, fast_path=False))
    rows = protect_transactions_for_lake(b.protector, clean)
    rows = rows.filter(pa.compute.less(rows["ts"], pa.scalar(cutoff, pa.timestamp("s"))))
    con = duckdb.connect()
    con.register("r", rows)
    return con.execute("SELECT * FROM r ORDER BY txn_id").fetchall()


def test_the_lake_equals_the_text_readers_rows_before_the_cutoff_one_file_per_shard_and_partition(source):
    b = Backends(Settings(workers=2))
    report = run_batch(source, b, chunk_bytes=100_000)
    assert report.chunks >= 4 and report.split is not None
    lake = _lake(b)
    assert len(lake) == report.batch_rows and lake == _reference(source, b, report.split.cutoff)
    root = b.settings.lake_dir / b.settings.lake_bucket / "transactions"
    files = sorted(root.rglob("*.parquet"))
    assert len(files) == report.published_files
    per_partition: dict[Path, int] = {}
    for f in files:
        per_partition[f.parent] = per_partition.get(f.parent, 0) + 1
        assert pq.read_schema(f).names == [
            n for n in tables.TRANSACTIONS_LAKE_SCHEMA.names if n not in tables.PARTITION_KEYS
        ]
        assert pq.read_table(f, columns=["ts"])["ts"].to_pylist()[-1] is not None
    assert max(per_partition.values()) <= report.chunks
    newest = duckdb.connect().sql(f"SELECT max(ts) FROM read_parquet('{root}/**/*.parquet')").fetchall()[0][0]
    assert newest < report.split.cutoff


def test_shards_rewritten_with_a_recorded_cutoff_leave_the_stream_rows_out_themselves(source):
    b = Backends(Settings(workers=2))
    first = run_batch(source, b, chunk_bytes=100_000)
    before = _lake(b)
    for info in list(b.object_store.list(f"s3://{b.settings.lake_bucket}/_manifests/{JOB}/")):
        if not info.uri.endswith(("/_job.json", "/_plan.json")):
            b.object_store.delete(info.uri)  # every shard to do again; the split stays recorded
    again = run_batch(source, b, chunk_bytes=100_000)
    assert again.chunks_skipped == 0 and again.split == first.split
    assert (again.batch_rows, again.stream_rows, again.published_files) == (
        first.batch_rows,
        first.stream_rows,
        first.published_files,
    )
    assert _lake(b) == before


def test_files_of_an_earlier_layout_are_removed(source):
    b = Backends(Settings(workers=1))
    run_batch(source, b, chunk_bytes=100_000)
    rows = _lake(b)
    stale = "s3://" + b.settings.lake_bucket + "/transactions/year=2001/month=1/part-batch-0.parquet"
    b.object_store.put_bytes(stale, b"not even parquet")
    for info in list(b.object_store.list(f"s3://{b.settings.lake_bucket}/_manifests/{JOB}/")):
        if info.uri.endswith("/_published.json"):
            b.object_store.delete(info.uri)
    run_batch(source, b, chunk_bytes=100_000)
    assert not b.object_store.exists(stale) and _lake(b) == rows


def _partition_rows(year: int, month: int, days: list[int]) -> pa.Table:
    n = len(days)
    data_schema = pa.schema(
        [f for f in tables.TRANSACTIONS_LAKE_SCHEMA if f.name not in tables.PARTITION_KEYS]
    )
    return pa.table(
        {
            "txn_id": [f"t{year}{month}{d}" for d in days],
            "user_token": ["usr_a"] * n,
            "card_token": ["crd_a"] * n,
            "ts": pa.array([datetime(year, month, d, 12) for d in days], pa.timestamp("s")),
            "amount_cents": list(range(n)),
            "channel": ["swipe"] * n,
            "merchant_id": [1] * n,
            "merchant_city": ["Austin"] * n,
            "merchant_state": ["TX"] * n,
            "zip": ["78701"] * n,
            "mcc": pa.array([5411] * n, pa.int16()),
            "errors": pa.array([[]] * n, pa.list_(pa.string())),
            "is_fraud": [False] * n,
            "event_seq": list(range(n)),
        },
        schema=data_schema,
    )


def test_trim_deletes_later_months_filters_the_cutoff_month_and_is_idempotent(tmp_path):
    b = Backends(Settings(home=tmp_path))
    store, bucket = b.object_store, b.settings.lake_bucket
    files = []
    for year, month, days in ((2019, 12, [1, 30]), (2020, 1, [3, 14, 15, 28]), (2020, 2, [1, 2])):
        rows = _partition_rows(year, month, days)
        uri = f"s3://{bucket}/transactions/year={year}/month={month}/part-batch-x.parquet"
        store.put_bytes(uri, partition_file_bytes(rows, DICTIONARY_COLUMNS))
        last = int(rows["ts"].cast(pa.int64()).to_pylist()[-1])
        files.append({"uri": uri, "year": year, "month": month, "rows": len(days), "max_ts": last})
    cutoff = datetime(2020, 1, 14, 12)
    kept = trim_to_cutoff(store, files, cutoff, DICTIONARY_COLUMNS)
    assert [(f["year"], f["month"], f["rows"]) for f in kept] == [(2019, 12, 2), (2020, 1, 1)]
    assert not store.exists(files[2]["uri"])
    january = pq.read_table(store.local_path(files[1]["uri"]))
    assert january["txn_id"].to_pylist() == ["t202013"]
    december = pq.read_table(store.local_path(files[0]["uri"]))
    assert january.schema == december.schema  # a rewritten file is typed as any other
    assert trim_to_cutoff(store, files, cutoff, DICTIONARY_COLUMNS) == kept  # after a crash: the same again


def test_lake_rows_equal_their_definition_from_the_protector(source):
    """The batch's protection (one secret per customer, a few HMACs per distinct card, keyed parts cut per
    card, partition columns from month numbers) against the plain definition: the protector's tokens,
    event_seq = line + the card's keyed offset, txn_id = keyed part of the card token + "-" + event_seq,
    year and month of ts."""
    b = Backends(Settings(workers=1))
    recorder = QuarantineRecorder()
    clean = pa.concat_tables(iter_transactions(source / TRANSACTIONS_FILE, recorder))
    got = protect_transactions_for_lake(b.protector, clean)
    tokens = b.protector.protect_transactions(clean.drop_columns(["line"]))
    lines = clean["line"].to_pylist()
    pairs = zip(clean["user"].to_pylist(), clean["card"].to_pylist(), strict=True)
    seqs = [n + b.protector.tokens.card_order_offset(u, c) for (u, c), n in zip(pairs, lines, strict=True)]
    want_ids = [f"{c[4:]}-{q}" for c, q in zip(tokens["card_token"].to_pylist(), seqs, strict=True)]
    assert got["txn_id"].to_pylist() == want_ids
    assert got["user_token"].equals(tokens["user_token"]) and got["card_token"].equals(tokens["card_token"])
    ts = clean["ts"].to_pylist()
    assert got["year"].to_pylist() == [t.year for t in ts] and got["month"].to_pylist() == [
        t.month for t in ts
    ]
    assert got["event_seq"].to_pylist() == seqs and got.schema == tables.TRANSACTIONS_LAKE_SCHEMA
    assert all(0 <= q < 2**31 for q in seqs) and seqs != lines


def test_month_numbers_are_numpys_calendar_months():
    from cdp.lake.transactions import _months_since_epoch

    rng = np.random.default_rng(7)
    seconds = rng.integers(-80 * 365 * 86_400, 131 * 365 * 86_400, 200_000)
    edges = ["1900-01-01T00:00:00", "1900-02-28T23:59:59", "1900-03-01T00:00:00", "2000-02-29T12:00:00"]
    edges += ["2100-12-31T23:59:59", "1969-12-31T23:59:59", "1970-01-01T00:00:00", "2020-02-29T23:59:59"]
    ts = np.concatenate([seconds.astype("datetime64[s]"), np.array(edges, dtype="datetime64[s]")])
    want = ts.astype("datetime64[M]").astype(np.int64)
    assert (_months_since_epoch(pa.array(ts)) == want).all()


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.3, 0.95])
def test_the_split_from_second_arrays_is_the_plain_order_statistic(fraction):
    from cdp.lake.split import split_of_seconds

    rng = np.random.default_rng(int(fraction * 100))
    parts = [
        rng.integers(0, 10_000, 50_000),  # many ties
        np.sort(rng.integers(5_000, 2_000_000, 120_000)),  # newest rows all in one part
        np.empty(0, np.int64),
        rng.integers(1_900_000, 2_000_001, 3_000),
    ]
    everything = np.concatenate(parts)
    k = min(everything.size - 1, int(np.floor(everything.size * (1 - fraction))))
    cutoff = np.sort(everything)[k]
    split = split_of_seconds("x", parts, fraction)
    assert split.cutoff == np.int64(cutoff).astype("datetime64[s]").astype(datetime)
    assert split.rows == everything.size and split.stream_rows == int((everything >= cutoff).sum())


def test_a_lake_written_with_the_former_tokens_is_not_resumed(source, tmp_path):
    """A lake whose batch identity records the former layout and no token scheme (lines and ids from the
    global token key) refuses to be resumed, in one line that says to rebuild it."""
    from cdp.batch.job import BatchConfigChanged
    from cdp.lake.writer import LakeWriter

    b = Backends(Settings(home=tmp_path, workers=1))
    run_batch(source, b)
    writer = LakeWriter(b.object_store, b.settings.lake_bucket)
    identity = writer.done(JOB, "_job")
    assert identity["tokens"] == 2 and identity["layout"] == "shards-parquet-v2"
    former = {k: v for k, v in identity.items() if k != "tokens"} | {"layout": "shards-parquet-v1"}
    writer.mark_done(JOB, "_job", former)
    with pytest.raises(BatchConfigChanged) as refused:
        run_batch(source, b)
    message = str(refused.value)
    assert "\n" not in message and "layout, tokens" in message and "rebuild" in message
