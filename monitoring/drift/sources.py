"""The two sides of a drift comparison: the champion's training snapshot, and a window of current data.

Reference. The champion's lineage names the pipeline run that trained it (`pipeline_run_id` =
`<pipeline>/<execution id>`). That run's feature query (the first Processing step's Athena dataset input)
left its exact result in the lake, the Parquet files under `<OutputS3Uri>/<execution id>/<step>/` (written
by the engine: DuckDB's COPY here, Athena's UNLOAD in AWS): the rows the model was trained, validated and
tested on. The run record says where. If the champion, its run record or those files are gone, the job
stops with `DriftSourceError` (it never falls back to other data).

Current, fraud: the `transactions_scored` rows of the model within a window of EVENT time (the data is
historical, so wall-clock time says nothing): by default the `window_days` days up to the newest scored
event. Features come from each row's online-features JSON (same names as the offline view's columns).
Current, customer models (CLV, segmentation): the `customer_features` rows as of the latest cut-off.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.registry.port import ModelVersion
from monitoring.drift.report import ReferenceSnapshot, Window

if TYPE_CHECKING:
    from cdp.backends import Backends

REFERENCE_ROWS = 200_000  # the training snapshot's rows kept for drift (the job samples from these)
_ORDER, _KEY = "__reference_order", "__reference_key"
SCORED_TABLE = "transactions_scored"
CUSTOMER_TABLE = "customer_features"


class DriftSourceError(LookupError):
    """A side of the comparison cannot be read: no champion, snapshot gone, no current data."""


@dataclass(frozen=True)
class Reference:
    champion: ModelVersion
    snapshot: ReferenceSnapshot
    frame: pd.DataFrame


@dataclass(frozen=True)
class Current:
    window: Window
    frame: pd.DataFrame  # feature columns (+ `fraud_probability` for scored data)
    scored_by: tuple[int, ...] = ()  # model versions that scored the rows (scored data only)


def champion_of(backends: Backends, model_name: str) -> ModelVersion:
    champion = backends.model_registry.champion(model_name)
    if champion is None:
        raise DriftSourceError(f"{model_name} has no champion: there is no training snapshot to compare with")
    return champion


def _run_record(backends: Backends, execution_id: str) -> dict:
    path = backends.settings.state_dir / "pipelines" / "runs" / execution_id / "run.json"
    if not path.is_file():
        raise DriftSourceError(
            f"the run record of pipeline execution {execution_id} (run.json) is gone: "
            "the champion's training snapshot cannot be located"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def snapshot_uri(record: dict) -> str:
    """The folder where the run's feature query left its result files (the first Processing step with an
    Athena input)."""
    execution_id = record["execution_id"]
    for step in record.get("steps", []):
        if step.get("type") != "Processing" or step.get("status") != "Succeeded":
            continue
        for item in step.get("properties", {}).get("ProcessingInputs", []):
            athena = (item.get("DatasetDefinition") or {}).get("AthenaDatasetDefinition")
            if athena and athena.get("OutputS3Uri"):
                return f"{athena['OutputS3Uri'].rstrip('/')}/{execution_id}/{step['name']}/"
    raise DriftSourceError(f"pipeline execution {execution_id} has no feature-query step to take data from")


def load_reference(backends: Backends, model_name: str) -> Reference:
    """The champion and the rows of its training snapshot."""
    champion = champion_of(backends, model_name)
    lineage = champion.lineage
    _, _, execution_id = lineage.pipeline_run_id.rpartition("/")
    if not execution_id:
        raise DriftSourceError(f"{model_name} v{champion.version}: its lineage names no pipeline run")
    uri = snapshot_uri(_run_record(backends, execution_id))
    files = sorted(info.uri for info in backends.object_store.list(uri))
    if not files:
        raise DriftSourceError(f"{model_name} v{champion.version}: the training snapshot at {uri} is gone")
    tables = (pq.read_table(io.BytesIO(backends.object_store.get_bytes(f))) for f in files)
    kept, rows = bounded_rows(tables, REFERENCE_ROWS)
    if rows == 0:
        raise DriftSourceError(f"{model_name} v{champion.version}: the training snapshot at {uri} is empty")
    snapshot = ReferenceSnapshot(lineage.data_snapshot_hash, lineage.pipeline_run_id, uri, rows)
    return Reference(champion, snapshot, kept.to_pandas())


def bounded_rows(tables: Iterable[pa.Table], cap: int, seed: int = 0) -> tuple[pa.Table, int]:
    """At most `cap` rows of the tables, drawn uniformly without replacement, in their original order,
    and how many rows there were: one table at a time, so memory holds `cap` rows plus one file (a
    full-size training snapshot is ~22M rows: ~20 GB as one frame). Every row when there are no more
    than `cap`; the same rows for the same files and seed."""
    kept: pa.Table | None = None
    rows = 0
    for i, table in enumerate(tables):
        order = pa.array(np.arange(rows, rows + table.num_rows, dtype=np.int64))
        keys = pa.array(np.random.default_rng([seed, i]).random(table.num_rows))
        table = table.append_column(_ORDER, order).append_column(_KEY, keys)
        rows += table.num_rows
        kept = table if kept is None else pa.concat_tables([kept, table])
        if kept.num_rows > cap:  # the `cap` smallest keys: a uniform sample of everything seen
            smallest = np.argpartition(kept[_KEY].to_numpy(), cap)[:cap]
            kept = kept.take(pa.array(np.sort(smallest)))
    if kept is None:
        return pa.table({}), 0
    return kept.sort_by(_ORDER).drop_columns([_ORDER, _KEY]), rows


def _has_table(backends: Backends, name: str) -> bool:
    return any(t.name == name for t in backends.catalog.tables())


def _literal(moment: datetime) -> str:
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S}'"


def scored_window(
    backends: Backends,
    model_name: str,
    window: tuple[datetime, datetime] | None,
    window_days: int,
    sample_size: int,
    seed: int,
) -> Current:
    """A seeded sample of at most `sample_size` scored rows of `model_name` in the event-time window."""
    if not _has_table(backends, SCORED_TABLE):
        raise DriftSourceError(f"no {SCORED_TABLE} table in the catalog: nothing has been scored yet")
    model = model_name.replace("'", "")
    if window is None:
        newest = backends.catalog.query(
            f"SELECT max(ts) AS newest FROM {SCORED_TABLE} WHERE model = '{model}'"
        ).to_pylist()[0]["newest"]
        if newest is None:
            raise DriftSourceError(f"{SCORED_TABLE} holds no rows scored by {model_name}")
        end = newest + timedelta(seconds=1)
        start = end - timedelta(days=window_days)
        rule = f"the {window_days} days of event time up to the newest scored event"
    else:
        start, end = window
        rule = "the event-time range asked for"
    rows = backends.catalog.query(
        f"SELECT features, fraud_probability, model_version FROM {SCORED_TABLE} WHERE model = '{model}' "
        f"AND ts >= {_literal(start)} AND ts < {_literal(end)} ORDER BY ts, txn_id"
    ).to_pandas()
    described = Window(SCORED_TABLE, start.isoformat(), end.isoformat(), len(rows), rule)
    if rows.empty:
        raise DriftSourceError(f"{SCORED_TABLE} has no rows of {model_name} in [{start}, {end})")
    sample = rows.sample(n=min(sample_size, len(rows)), random_state=seed).sort_index()
    features = pd.DataFrame([json.loads(text) for text in sample["features"]], index=sample.index)
    features["fraud_probability"] = sample["fraud_probability"].astype(float)
    versions = tuple(sorted({int(v) for v in sample["model_version"].dropna()}))
    return Current(described, features, versions)


def customer_window(backends: Backends) -> Current:
    """The customer feature table's rows as of its latest cut-off."""
    if not _has_table(backends, CUSTOMER_TABLE):
        raise DriftSourceError(f"no {CUSTOMER_TABLE} table in the catalog: build the customer tables first")
    frame = backends.catalog.query(
        f"SELECT * FROM {CUSTOMER_TABLE} WHERE as_of = (SELECT max(as_of) FROM {CUSTOMER_TABLE})"
    ).to_pandas()
    if frame.empty:
        raise DriftSourceError(f"{CUSTOMER_TABLE} is empty")
    as_of = pd.Timestamp(frame["as_of"].iloc[0]).isoformat()
    return Current(Window(CUSTOMER_TABLE, as_of, as_of, len(frame), "the latest as-of cut-off"), frame)
