"""INTERIM, to be replaced: scoring and evaluating feature rows with a chosen model version.

Batch scoring and evaluation of any version on any labelled data (`cdp score`, `cdp evaluate`, IBM files
with point-in-time features and a quarantine of bad rows) belong to `inference.batch_score` and
`inference.evaluation`. Until those land, `Platform.score` / `Platform.evaluate` fall back on these two
small functions over the serving code (`inference.predict.model_input`, `inference.fraud_scoring`): they
take rows that already carry the fraud view's feature columns (a training set's split, a lake features
table, a Parquet or CSV file of such rows), never an IBM source file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from inference.fraud_scoring import decision_threshold, score_frame
from inference.loaded import LoadedModel
from inference.predict import model_input

KEYS = ("txn_id", "card_token", "ts")
LABELS = ("is_fraud", "label")
REASON_CODES = 3


def score_rows(model: LoadedModel, frame: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """One row per input row: its keys, the fraud probability, the decision at the threshold (the
    configured one, else the version's evaluated alert threshold) and the top reason codes."""
    scores = score_frame(model, model_input(model, frame), REASON_CODES)
    cut = decision_threshold(model, threshold)
    out = frame[[k for k in KEYS if k in frame.columns]].reset_index(drop=True).copy()
    out["score"] = [s.probability for s in scores]
    out["decision"] = np.where(out["score"] >= cut, "alert", "pass")
    out["reason_codes"] = [[name for name, _ in s.reasons] for s in scores]
    out.attrs.update(model=model.name, version=model.version, threshold=cut)
    return out


def evaluate_rows(
    model: LoadedModel, frame: pd.DataFrame, budget: float, threshold: float | None = None
) -> dict[str, Any]:
    """PR-AUC, ROC-AUC, recall and precision at the alert budget and at the threshold, on labelled rows."""
    from training.fraud.evaluate import fraud_metrics

    label = next((c for c in LABELS if c in frame.columns), None)
    if label is None or frame[label].isna().all():
        raise ValueError(
            "the data carries no fraud labels (an is_fraud or label column): nothing to evaluate"
        )
    labelled = frame[frame[label].notna()].reset_index(drop=True)
    scored = score_rows(model, labelled, threshold)
    labels = labelled[label].astype(bool).to_numpy(np.int64)
    metrics = fraud_metrics(labels, scored["score"].to_numpy(np.float64), budget)
    alerts = (scored["decision"] == "alert").to_numpy()
    hits = int(labels[alerts].sum())
    metrics.update(
        threshold=float(scored.attrs["threshold"]),
        recall_at_threshold=hits / max(1, int(labels.sum())),
        precision_at_threshold=hits / max(1, int(alerts.sum())),
    )
    return {"model": model.name, "version": model.version, "rows": len(labelled), "metrics": metrics}
