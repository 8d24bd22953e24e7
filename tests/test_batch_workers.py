"""Shards in worker processes: segments planned lazily with exact lines, and the same lake, quarantine and
counts whether the shards run in worker processes or in the job's own process."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.ibm import rows
from cdp.ibm.rows import iter_segments, plan_segments
from cdp.ibm.schema import TRANSACTIONS_FILE
from cdp.settings import Settings
from cdp.synth.generator import generate

BAD_ROWS = (
    "9,9,2010,1,1,10:00,$1.00,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n",  # unknown card
    "0,0,2010,1,1,10:00,$1.x0,Swipe Transaction,5,Austin,TX,78701.0,5411,,No\n",  # broken amount
)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=3, seed=31, workers=1)
    csv = out / TRANSACTIONS_FILE
    lines = csv.read_text().splitlines(keepends=True)
    middle = len(lines) // 2  # bad rows inside a middle segment, not only at the end
    csv.write_text("".join([*lines[:middle], *BAD_ROWS, *lines[middle:], *BAD_ROWS]))
    return out


def test_lazy_segments_cover_the_file_with_exact_first_lines(source):
    csv = source / TRANSACTIONS_FILE
    data = csv.read_bytes()
    segments = list(iter_segments(csv, 10_000))
    assert len(segments) > 5 and segments == plan_segments(csv, 10_000)
    assert segments[0].start == data.index(b"\n") + 1 and segments[-1].end == len(data)
    for before, after in zip(segments, segments[1:], strict=False):
        assert before.end == after.start and data[before.end - 1 : before.end] == b"\n"
    for segment in segments:
        assert segment.first_line == data[: segment.start].count(b"\n") + 1


def test_the_first_segment_is_planned_before_the_file_is_read(source, monkeypatch):
    counted: list[tuple[int, int]] = []
    count = rows._NewlineCounter.count

    def counting(self, f, start, end):  # noqa: ANN001, ANN202
        counted.append((start, end))
        return count(self, f, start, end)

    monkeypatch.setattr(rows._NewlineCounter, "count", counting)
    segments = iter_segments(source / TRANSACTIONS_FILE, 10_000)
    first = next(segments)
    assert first.first_line == 2 and counted == []
    second = next(segments)
    assert counted == [(first.start, first.end)] and second.start == first.end


def _lake_rows(b: Backends) -> list[tuple]:
    """The lake's transactions, without the keyed columns (each home has its own keys), in one order."""
    root = b.settings.lake_dir / b.settings.lake_bucket / "transactions"
    pattern = str(root / "**" / "*.parquet").replace("'", "''")
    return (
        duckdb.connect()
        .sql(
            "SELECT * EXCLUDE (txn_id, user_token, card_token, event_seq), "
            "count(DISTINCT card_token) OVER () AS cards "
            f"FROM read_parquet('{pattern}', hive_partitioning = true) ORDER BY ALL"
        )
        .fetchall()
    )


def test_worker_processes_write_what_the_job_process_writes(source, tmp_path):
    runs = {}
    for workers in (1, 2):
        b = Backends(Settings(home=tmp_path / f"w{workers}", workers=workers))
        report = run_batch(source, b, chunk_bytes=64 << 10)
        quarantine = pq.read_table(report.quarantine_path).drop_columns(["quarantined_at"]).to_pylist()
        runs[workers] = (b, report, quarantine)
    (b1, one, q1), (b2, two, q2) = runs[1], runs[2]
    assert two.chunks >= one.chunks > 2 and two.chunks % 2 == 0 and two.chunks_skipped == 0
    assert two.files == one.files and one.files[TRANSACTIONS_FILE]["rows_quarantined"] == 2 * len(BAD_ROWS)
    assert (two.batch_rows, two.stream_rows, two.split) == (one.batch_rows, one.stream_rows, one.split)
    # bad rows sit in the middle of a shard and in the last one: their lines are file lines in both runs
    assert q2 == q1 and [r["line"] for r in q2] == sorted(r["line"] for r in q2)
    lines = (source / TRANSACTIONS_FILE).read_text().splitlines()
    assert [lines[r["line"] - 1] + "\n" for r in q2] == [*BAD_ROWS, *BAD_ROWS]
    lake = _lake_rows(b2)
    assert len(lake) == two.batch_rows and lake == _lake_rows(b1)
    files = list((b2.settings.lake_dir / b2.settings.lake_bucket / "transactions").rglob("*.parquet"))
    assert len(files) == two.published_files and all("/part-batch-" in str(f) for f in files)


def test_a_resumed_run_in_worker_processes_skips_every_done_shard(source, tmp_path):
    b = Backends(Settings(home=tmp_path / "home", workers=2))
    first = run_batch(source, b, chunk_bytes=64 << 10)
    again = run_batch(source, b, chunk_bytes=64 << 10)
    assert again.chunks_skipped == again.chunks == first.chunks
    assert again.files == first.files and again.batch_rows == first.batch_rows
    assert len(_lake_rows(b)) == first.batch_rows
