"""The rows candidate and champion are judged on: labelled data neither model was trained on.

- fraud: the fraud view's rows (offline features, streamed transactions landed in the lake included) that
  are newer than both models' training windows, in months holding at least one fraud label (a month with
  no label at all is unlabelled, not genuine), the newest `max_holdout_rows` of them;
- CLV: the current `clv_training_set` test split: features as of the latest cut-off with the realised
  spend of the 12 months after it. Train and validation rows are as of 12 months earlier, so no model
  trained on this table saw these labels; an older champion is judged on the same rows;
- segmentation: the current `segmentation_training_set` customers (no labels: clusters are judged by
  their silhouette and by how well the candidate's assignment agrees with the champion's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from cdp.backends import Backends
from features.materialize import features_table_name
from features.offline import range_sql

FRAUD_LABELS = ("is_fraud", "label")
CLV_TABLE = "clv_training_set"
SEGMENTATION_TABLE = "segmentation_training_set"
SEGMENTATION_SAMPLE_ROWS = 3_000  # silhouette is quadratic in rows: a seeded sample above this


@dataclass(frozen=True)
class Holdout:
    """Feature rows (original columns, as serving receives them), their labels and what they are."""

    frame: pd.DataFrame
    labels: pd.Series | None
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def positives(self) -> int | None:
        return None if self.labels is None else int(self.labels.astype(bool).sum())


def _has_table(backends: Backends, name: str) -> bool:
    return any(t.name == name for t in backends.catalog.tables())


def _literal(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.replace(tzinfo=None).isoformat(sep=' ', timespec='seconds')}'"


def _fraud_rows_sql(backends: Backends, after: datetime) -> tuple[str, str]:
    """SQL of the fraud view's rows after `after`, and which source it reads.

    The materialised features table is used when it is as new as the transactions (it is the same SQL);
    else the view is computed over the lake, so transactions landed since (the stream) are included.
    """
    table = features_table_name("fraud_card")
    if _has_table(backends, table):
        newest = backends.catalog.query(
            f"SELECT (SELECT max(ts) FROM {table}) AS features, (SELECT max(ts) FROM transactions) AS lake"
        ).to_pylist()[0]
        if newest["features"] is not None and newest["features"] >= newest["lake"]:
            return f"SELECT * FROM {table} WHERE ts > {_literal(after)}", table
    return (
        f"SELECT * FROM ({range_sql('fraud_card', after)}) AS r WHERE r.ts > {_literal(after)}",
        "fraud_card view",
    )


def fraud_holdout(backends: Backends, after: datetime, max_rows: int) -> Holdout:
    """Labelled fraud-view rows strictly after `after`, newest `max_rows` of them, in time order."""
    labelled = backends.catalog.query(
        "SELECT year, month FROM transactions "
        f"WHERE ts > {_literal(after)} GROUP BY year, month "
        "HAVING sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) > 0"
    ).to_pylist()
    months = {(r["year"], r["month"]) for r in labelled}
    description: dict[str, Any] = {
        "kind": "fraud",
        "after": after.isoformat(),
        "labelled_months": sorted(f"{y:04d}-{m:02d}" for y, m in months),
    }
    if not months:
        return Holdout(pd.DataFrame(), pd.Series(dtype="int8"), {**description, "source": "none"})
    sql, source = _fraud_rows_sql(backends, after)
    keys = ", ".join(str(y * 100 + m) for y, m in sorted(months))
    frame = backends.catalog.query(
        f"SELECT * FROM ({sql}) AS h WHERE h.year * 100 + h.month IN ({keys}) "
        f"ORDER BY h.ts DESC, h.txn_id DESC LIMIT {int(max_rows)}"
    ).to_pandas()
    frame = frame.iloc[::-1].reset_index(drop=True)
    label = next((c for c in FRAUD_LABELS if c in frame.columns), None)
    labels = frame[label].astype(bool).astype("int8") if label else pd.Series(dtype="int8")
    if len(frame):
        description.update(first_ts=str(frame["ts"].min()), last_ts=str(frame["ts"].max()))
    return Holdout(frame, labels, {**description, "source": source})


def clv_holdout(backends: Backends) -> Holdout:
    """The current CLV table's test split: features as of the latest cut-off, realised next-12-month spend."""
    from training.clv.preprocess import LABELS

    if not _has_table(backends, CLV_TABLE):
        return Holdout(pd.DataFrame(), None, {"kind": "clv", "source": "none"})
    frame = backends.catalog.query(f"SELECT * FROM {CLV_TABLE} WHERE split = 'test'").to_pandas()
    label = next((c for c in LABELS if c in frame.columns), None)
    labels = frame[label].astype(float) if label else None
    description = {"kind": "clv", "source": f"{CLV_TABLE} split=test"}
    if "as_of" in frame.columns and len(frame):
        description["as_of"] = str(frame["as_of"].max())
    return Holdout(frame, labels, description)


def segmentation_holdout(backends: Backends, seed: int = 7) -> Holdout:
    """The current segmentation customers (a seeded sample when there are many)."""
    if not _has_table(backends, SEGMENTATION_TABLE):
        return Holdout(pd.DataFrame(), None, {"kind": "segmentation", "source": "none"})
    frame = backends.catalog.query(f"SELECT * FROM {SEGMENTATION_TABLE}").to_pandas()
    if len(frame) > SEGMENTATION_SAMPLE_ROWS:
        frame = frame.sample(SEGMENTATION_SAMPLE_ROWS, random_state=seed).reset_index(drop=True)
    return Holdout(frame, None, {"kind": "segmentation", "source": SEGMENTATION_TABLE})
