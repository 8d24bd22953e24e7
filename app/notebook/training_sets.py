"""Training sets for a notebook, read through the analyst surface and kept in memory (nothing written).

- fraud: the `fraud_card` view computed point-in-time over the lake for `[start, end)` and split by whole
  months in time order with the platform's own plan (`features.training.plan_split`: unlabelled months
  skipped, the newest labelled months for test, then validation); the same rows and split the pipeline's
  training set holds for the same lake and range, so the promotion gate ties a model trained on it to the
  same training window (through the data snapshot hash);
- clv, segmentation: the tables `cdp features build` wrote (`clv_training_set`,
  `segmentation_training_set`), as they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from features.offline import compute_view
from features.training import data_snapshot_hash, month_label_counts, plan_split
from features.views import EVENT_VIEWS, view_sql

FRAUD_VIEW = "fraud_card"
TABLE_SETS = {"clv": "clv_training_set", "segmentation": "segmentation_training_set"}
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TrainingSet:
    """Rows (features, label, keys and a `split` column), what they are, and where they came from."""

    model: str
    frame: pd.DataFrame
    features: tuple[str, ...]
    label: str
    data_snapshot_hash: str
    description: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> pd.DataFrame:
        """The rows of one split (`train`, `validation` or `test`)."""
        return self.frame[self.frame["split"] == name].reset_index(drop=True)

    @property
    def rows(self) -> dict[str, int]:
        return {name: int((self.frame["split"] == name).sum()) for name in SPLITS}

    def manifest(self) -> dict[str, Any]:
        """The feature manifest a tracked run logs: features, label, split plan, sources and hashes."""
        return {
            "model": self.model,
            "features": list(self.features),
            "label": self.label,
            "rows": self.rows,
            "data_snapshot_sha256": self.data_snapshot_hash,
            **self.description,
        }


def _day(value: date | None) -> datetime | None:
    return datetime(value.year, value.month, value.day) if value else None


def fraud_training_set(
    backends: Any, start: date | None = None, end: date | None = None, min_eval_frauds: int | None = None
) -> TrainingSet:
    """The fraud view's rows of `[start, end)`, split by time (see the module doc). `backends` is the
    caller's `AnalystBackends`: every query runs on the read-only analyst surface."""
    t_start, t_end = _day(start), _day(end)
    plan = plan_split(month_label_counts(backends, t_start, t_end), min_eval_frauds=min_eval_frauds)
    frame = compute_view(backends.catalog, FRAUD_VIEW, t_start, t_end).to_pandas()
    months = (
        frame["year"].astype(int).map("{:04d}".format) + "-" + frame["month"].astype(int).map("{:02d}".format)
    )
    frame["split"] = months.map(plan.split_of)
    frame = frame[frame["split"].notna()].reset_index(drop=True)
    view = EVENT_VIEWS[FRAUD_VIEW]
    return TrainingSet(
        model="fraud",
        frame=frame,
        features=tuple(view.feature_names),
        label="label" if "label" in frame.columns else view.label,
        data_snapshot_hash=data_snapshot_hash(backends),
        description={
            "view": FRAUD_VIEW,
            "view_sql_sha256": hashlib.sha256(view_sql(FRAUD_VIEW).encode()).hexdigest(),
            "requested_range": [str(start) if start else None, str(end) if end else None],
            "months": {name: list(getattr(plan, name)) for name in SPLITS},
            "skipped_unlabelled_months": list(plan.skipped_unlabelled),
        },
    )


def table_training_set(backends: Any, model: str) -> TrainingSet:
    """A customer model's training table as `cdp features build` wrote it."""
    table = TABLE_SETS[model]
    frame = backends.catalog.query(f"SELECT * FROM {table}").to_pandas()
    if "split" not in frame.columns:
        frame["split"] = "train"
    keys = {"split", "label", "user_token", "as_of", "year", "month"}
    return TrainingSet(
        model=model,
        frame=frame,
        features=tuple(c for c in frame.columns if c not in keys),
        label="label",
        data_snapshot_hash=data_snapshot_hash(backends),
        description={"table": table},
    )
