"""Training sets: a view's features + label over a time range, split by time into train / validation /
test, written to the lake as Parquet with a manifest, and registered as one table with a `split` column
(`fraud_training_set` for the fraud view) so `SELECT * FROM fraud_training_set WHERE split = 'train'` works.

Months with transactions but no fraud label at all are skipped by every split (the labels are missing,
not negative), so no model is trained or judged on them. Splits are whole months in time order: the last
labelled months are the test set, the ones before them validation, the rest training. Each evaluation
split takes the newest months until it holds enough fraud labels to measure (`min_eval_frauds`), never
more than its share of the labelled months: training reaches as close to today as the labels allow, so a
retraining after a new fraud pattern learns it, and is judged on the months after.

Labels: a row's `label` is the source's fraud flag, or the customer's own answer to the fraud notice that
covered the transaction ("it was me" / "not me", `fraud_feedback`, first answer known) when one was known
when the set was built (`labels_known_at` in the manifest). The answers are part of the data snapshot, so
a new answer makes a new set.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.catalog.port import PARTITION_VALUES, TableInfo
from cdp.feedback.replies import FRAUD_FEEDBACK
from cdp.lake.writer import parquet_bytes
from features.offline import compute_view
from features.views import EVENT_VIEWS, view_sql

SPLITS = ("train", "validation", "test")
# rows of the consecutive months one engine query sorts and writes (a file or two of the query's): a sort
# this size stays in memory, where one sort of a whole split spilled to disk
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class TimeSplit:
    train: tuple[str, ...]  # "YYYY-MM" months
    validation: tuple[str, ...]
    test: tuple[str, ...]
    skipped_unlabelled: tuple[str, ...]

    def split_of(self, month: str) -> str | None:
        for name in SPLITS:
            if month in getattr(self, name):
                return name
        return None


def plan_split(
    months: Mapping[str, tuple[int, int]],
    validation_share: float = 0.15,
    test_share: float = 0.15,
    min_eval_frauds: int | None = None,
) -> TimeSplit:
    """Whole-month split from {month: (rows, frauds)}; months with rows but no fraud are skipped.

    Test is the newest labelled months, validation the ones before, train the rest. Without
    `min_eval_frauds` each evaluation split is its share of the labelled months (at least one month);
    with it, each takes the newest months until it holds `min_eval_frauds` frauds, within that share.
    """
    labelled = sorted(m for m, (rows, frauds) in months.items() if rows > 0 and frauds > 0)
    skipped = tuple(sorted(m for m, (rows, frauds) in months.items() if rows > 0 and frauds == 0))
    if len(labelled) < 3:
        raise ValueError(f"a time split needs at least 3 months with fraud labels, found {len(labelled)}")
    max_test = max(1, math.floor(len(labelled) * test_share + 0.5))
    max_val = max(1, math.floor(len(labelled) * validation_share + 0.5))
    frauds = [months[m][1] for m in labelled]
    n_test = _eval_months(frauds, max_test, min_eval_frauds)
    n_val = _eval_months(frauds[: len(frauds) - n_test], max_val, min_eval_frauds)
    n_train = len(labelled) - n_test - n_val
    if n_train < 1:
        n_train, n_val, n_test = 1, 1, len(labelled) - 2
    return TimeSplit(
        tuple(labelled[:n_train]),
        tuple(labelled[n_train : n_train + n_val]),
        tuple(labelled[n_train + n_val :]),
        skipped,
    )


def _eval_months(frauds: list[int], most: int, min_frauds: int | None) -> int:
    """How many of the newest months (`frauds` per month, oldest first) an evaluation split takes."""
    if min_frauds is None:
        return most
    total = 0
    for taken, count in enumerate(reversed(frauds[-most:]), start=1):
        total += count
        if total >= min_frauds:
            return taken
    return most


def month_label_counts(
    backends: Backends, start: datetime | None, end: datetime | None
) -> dict[str, tuple[int, int]]:
    where = []
    if start is not None:
        where.append(f"ts >= TIMESTAMP '{start:%Y-%m-%d %H:%M:%S}'")
    if end is not None:
        where.append(f"ts < TIMESTAMP '{end:%Y-%m-%d %H:%M:%S}'")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = backends.catalog.query(
        "SELECT year, month, count(*) AS n, sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS frauds "
        f"FROM transactions {clause}GROUP BY year, month"
    ).to_pylist()
    return {f"{r['year']:04d}-{r['month']:02d}": (r["n"], int(r["frauds"] or 0)) for r in rows}


def data_snapshot_hash(backends: Backends) -> str:
    """sha256 over the lake objects the view and the labels read (uri, size, etag): changes whenever the
    data does."""
    digest = hashlib.sha256()
    for table in ("transactions", "cards", FRAUD_FEEDBACK.name):
        for obj in sorted(
            backends.object_store.list(f"s3://{backends.settings.lake_bucket}/{table}/"), key=lambda o: o.uri
        ):
            digest.update(f"{obj.uri}\t{obj.size}\t{obj.etag}\n".encode())
    return digest.hexdigest()


def build_training_set(
    backends: Backends, view: str = "fraud_card", start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Features + label of the transactions with `start <= ts < end`, split by time, written under
    `s3://<bucket>/training_sets/<view>/<set_id>/`; returns the manifest (also written there)."""
    t_start = datetime(start.year, start.month, start.day) if start else None
    t_end = datetime(end.year, end.month, end.day) if end else None
    split = plan_split(
        month_label_counts(backends, t_start, t_end),
        min_eval_frauds=backends.settings.training_eval_min_frauds,
    )
    snapshot = data_snapshot_hash(backends)
    features = EVENT_VIEWS[view].feature_names
    sql_hash = hashlib.sha256(view_sql(view).encode()).hexdigest()
    ident = json.dumps([snapshot, sql_hash, view, str(start), str(end)]).encode()
    set_id = hashlib.sha256(ident).hexdigest()[:16]
    prefix = f"s3://{backends.settings.lake_bucket}/training_sets/{view}/{set_id}/"
    data = f"{prefix}data/"  # hive-partitioned by split: the registered table's location
    known_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    answers = customer_answers_sql(backends, known_at)
    write_split = _split_writer(backends, view, t_start, t_end, answers)

    parts: dict[str, Any] = {}
    schema = None
    for name in SPLITS:
        chosen = getattr(split, name)
        folder = f"{data}split={name}/"
        for stale in list(backends.object_store.list(folder)):  # a rebuild of the same set
            backends.object_store.delete(stale.uri)
        written = write_split(chosen, folder)
        schema = schema or written.schema
        parts[name] = {
            "uri": folder,
            "months": [chosen[0], chosen[-1]] if chosen else [],
            "first_ts": written.first_ts,
            "last_ts": written.last_ts,
            "rows": written.rows,
            "frauds": written.frauds,
            "customer_answers": written.answered,
        }
    table = training_table_name(view)
    values = {PARTITION_VALUES: ",".join(SPLITS).encode()}  # Athena projects the three splits
    schema = schema.append(pa.field("split", pa.string(), metadata=values))
    backends.catalog.register_table(TableInfo(table, data, schema, ("split",)))
    manifest = {
        "set_id": set_id,
        "view": view,
        "table": table,
        "manifest_uri": f"{prefix}manifest.json",
        "label": "label",
        "label_sources": [
            "the source's fraud flag",
            "the customer's answer to a fraud notice (fraud_feedback)",
        ],
        "labels_known_at": known_at.isoformat(),
        "features": features,
        "requested_range": [str(start) if start else None, str(end) if end else None],
        "data_snapshot_sha256": snapshot,
        "view_sql_sha256": sql_hash,
        "splits": parts,
        "skipped_unlabelled_months": list(split.skipped_unlabelled),
        "month_plan": {k: list(v) for k, v in asdict(split).items()},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    backends.object_store.put_bytes(manifest["manifest_uri"], json.dumps(manifest, indent=2).encode())
    return manifest


def month_chunks(months: list[str], rows: Mapping[str, int], most: int) -> list[list[str]]:
    """`months` (in order) cut into runs of consecutive months holding at most `most` rows each (a
    month above that is a run of its own); one empty run when there are no months (an empty split
    still gets a file with the columns)."""
    chunks: list[list[str]] = [[]]
    held = 0
    for month in months:
        if chunks[-1] and held + rows[month] > most:
            chunks.append([])
            held = 0
        chunks[-1].append(month)
        held += rows[month]
    return chunks


def month_predicate(months: list[str], qualifier: str = "") -> str:
    """An SQL condition holding the rows of `months` ("YYYY-MM"), in the partition columns' own terms
    (`year = 2019 AND month IN (1, 2)`, per year) so the engine opens only those months' files: a
    condition on an expression of them (`year * 100 + month IN ...`) made DuckDB open every file of the
    table (3,118 at full size) for each query."""
    by_year: dict[int, list[int]] = {}
    for month in months:
        by_year.setdefault(int(month[:4]), []).append(int(month[5:7]))
    terms = [
        f"({qualifier}year = {y} AND {qualifier}month IN ({', '.join(map(str, ms))}))"
        for y, ms in sorted(by_year.items())
    ]
    return f"({' OR '.join(terms)})" if terms else "false"


@dataclass(frozen=True)
class WrittenSplit:
    """One split written under its folder: its schema and the figures the manifest keeps."""

    schema: pa.Schema
    rows: int
    frauds: int
    first_ts: str | None
    last_ts: str | None
    answered: int = 0  # rows labelled by the customer's answer


def customer_answers_sql(backends: Backends, known_at: datetime) -> str | None:
    """A query of the customers' answers known at `known_at`, one row per transaction (`txn_id`, `answer`:
    fraud or not, the first answer known), or None when no answer has landed. Registers `fraud_feedback`
    in the catalog (the reply book lands its rows in the lake; it holds no catalog)."""
    info = FRAUD_FEEDBACK.info(backends.settings.lake_bucket)
    if next(iter(backends.object_store.list(info.location)), None) is None:
        return None
    backends.catalog.register_table(info)
    return (
        "SELECT txn_id, min_by(is_fraud, known_at) AS answer FROM fraud_feedback "
        f"WHERE known_at <= TIMESTAMP '{known_at:%Y-%m-%d %H:%M:%S}' GROUP BY txn_id"
    )


def _split_writer(
    backends: Backends, view: str, start: datetime | None, end: datetime | None, answers: str | None = None
) -> Callable[[list[str], str], WrittenSplit]:
    """A function writing the view's rows of some months ("YYYY-MM"), in time order, as Parquet files
    under a folder (an `s3://` prefix ending in "/").

    From the materialised features table when there is one: the engine reads, sorts and writes the
    rows itself (`Catalog.query_to_files`, memory-bounded), so a split of tens of millions of rows never
    passes through this process's memory. The months go in chunks of consecutive months of at most
    `CHUNK_ROWS` rows, each chunk sorted on its own and written under `<folder>part-<nnnnn>/`, so the
    files' name order is time order and no sort holds more than a chunk: at 23.6M rows one global
    ORDER BY per split spilled to disk (177 CPU s, 2.6 GB peak), the chunks take 143 CPU s and 0.96 GB.
    Else the view is computed once, in memory (small data: tests, a view with no table yet). With
    `answers` (`customer_answers_sql`), a row's label is the customer's answer where there is one."""
    from features.materialize import features_table_name

    table = features_table_name(view)
    if any(t.name == table for t in backends.catalog.tables()):
        bounds = "".join(
            [
                f" AND t.ts >= TIMESTAMP '{start.isoformat(sep=' ')}'" if start else "",
                f" AND t.ts < TIMESTAMP '{end.isoformat(sep=' ')}'" if end else "",
            ]
        )
        schema = backends.catalog.query(f"SELECT * FROM {table} LIMIT 0").schema
        if answers is None:
            source, label, answered, columns = f"{table} AS t", "t.label", "0", "t.*"
        else:
            source = f"{table} AS t LEFT JOIN ({answers}) AS fb ON fb.txn_id = t.txn_id"
            label, answered = "coalesce(fb.answer, t.label)", "count(fb.answer)"
            columns = ", ".join(f"{label} AS label" if n == "label" else f"t.{n}" for n in schema.names)
        figures = {
            f"{r['year']:04d}-{r['month']:02d}": r
            for r in backends.catalog.query(
                f"SELECT t.year, t.month, count(*) AS n, sum(CAST({label} AS INTEGER)) AS frauds, "
                f"{answered} AS answered, min(t.ts) AS first_ts, max(t.ts) AS last_ts FROM {source} "
                f"WHERE true{bounds} GROUP BY t.year, t.month"
            ).to_pylist()
        }

        def from_table(months: list[str], folder: str) -> WrittenSplit:
            rows = {m: figures[m]["n"] if m in figures else 0 for m in months}
            for index, chunk in enumerate(month_chunks(months, rows, CHUNK_ROWS)):
                where = f"WHERE {month_predicate(chunk, 't.')}{bounds}"
                backends.catalog.query_to_files(
                    f"SELECT {columns} FROM {source} {where} ORDER BY t.ts, t.event_seq",
                    f"{folder}part-{index:05d}/",
                )
            present = [figures[m] for m in months if m in figures]
            return _written(
                schema,
                sum(f["n"] for f in present),
                sum(f["frauds"] or 0 for f in present),
                min((f["first_ts"] for f in present), default=None),
                max((f["last_ts"] for f in present), default=None),
                sum(int(f["answered"] or 0) for f in present),
            )

        return from_table
    rows = compute_view(backends.catalog, view, start, end)
    answered = pa.array([False] * rows.num_rows)
    if answers is not None:
        known = {r["txn_id"]: r["answer"] for r in backends.catalog.query(answers).to_pylist()}
        found = [known.get(t) for t in rows["txn_id"].to_pylist()]
        answered = pa.array([f is not None for f in found])
        labels = [
            a if a is not None else lab for a, lab in zip(found, rows["label"].to_pylist(), strict=True)
        ]
        rows = rows.set_column(
            rows.schema.get_field_index("label"), rows.schema.field("label"), pa.array(labels, pa.bool_())
        )
    month_text = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(rows["year"], pa.string()), 4, "0"),
        pc.utf8_lpad(pc.cast(rows["month"], pa.string()), 2, "0"),
        "-",
    )

    def from_view(months: list[str], folder: str) -> WrittenSplit:
        chosen = pc.is_in(month_text, pa.array(months, pa.string()))
        part = rows.filter(chosen)
        backends.object_store.put_bytes(f"{folder}part-0.parquet", parquet_bytes(part))
        ts, empty = part["ts"], part.num_rows == 0
        first, last = (None, None) if empty else (pc.min(ts).as_py(), pc.max(ts).as_py())
        count = pc.sum(pc.cast(answered.filter(chosen), pa.int64())).as_py()
        return _written(part.schema, part.num_rows, pc.sum(part["label"]).as_py(), first, last, count)

    return from_view


def _written(
    schema: pa.Schema, rows: int, frauds: Any, first: Any, last: Any, answered: Any = 0
) -> WrittenSplit:
    return WrittenSplit(
        schema=schema,
        rows=int(rows or 0),
        frauds=int(frauds or 0),
        first_ts=str(first) if rows and first is not None else None,
        last_ts=str(last) if rows and last is not None else None,
        answered=int(answered or 0),
    )


def training_table_name(view: str) -> str:
    """The catalog table holding the view's latest training set, every split in one (`split` column)."""
    return "fraud_training_set" if view == "fraud_card" else f"{view}_training_set"
