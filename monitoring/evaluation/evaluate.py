"""Evaluate a model version on labelled data the user brings.

    report = evaluate_model("cdp-fraud", 2, "labelled.csv", out_dir=Path("eval"))   # score, then evaluate
    report = evaluate_scored(scores)                                                 # already scored rows

`evaluate_model` scores the input with `inference.batch_scoring.score_transactions` (the same features,
encoding and threshold as batch scoring), then `evaluate_scored` measures: PR-AUC, ROC-AUC, precision and
recall at the version's threshold and at the alert budget (the promotion policy's), calibration (reliability
bins, Brier, ECE), per-episode detection, and bootstrap intervals over fraud episodes; the report names the
data by its fingerprint (`fingerprint.py`). `card_record.record_in_card` keeps a summary in the version's
model card (`cdp evaluate --record`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from monitoring.evaluation.fingerprint import data_fingerprint
from monitoring.evaluation.metrics import (
    EvaluationInputError,
    at_budget,
    at_threshold,
    bootstrap_by_episode,
    episode_detection,
    episodes,
    headline,
    reliability,
)
from monitoring.evaluation.report import HTML_FILE, JSON_FILE, EvaluationReport, plots, render_html

if TYPE_CHECKING:
    from cdp.backends import Backends

# figures recomputed in every bootstrap resample
BOOTSTRAPPED = (
    "pr_auc",
    "precision_at_threshold",
    "recall_at_threshold",
    "precision_at_budget",
    "recall_at_budget",
    "episode_detection_rate",
)
NO_LABELS = "the input has no fraud labels (`Is Fraud?`): evaluation needs labelled transactions"


def evaluate_scored(
    scores: pd.DataFrame,
    *,
    threshold: float | None = None,
    alert_budget: float = 0.005,
    episode_gap_hours: float = 72.0,
    bootstrap_rounds: int = 200,
    seed: int = 7,
) -> EvaluationReport:
    """Measure scored rows (`score`, `is_fraud`, `card_token`, `ts`, as `score_transactions` returns them).

    `threshold` defaults to the one in `scores.attrs` (the version's registered threshold)."""
    if "is_fraud" not in scores.columns or scores["is_fraud"].isna().all():
        raise EvaluationInputError(NO_LABELS)
    if scores["is_fraud"].isna().any():
        raise EvaluationInputError("some rows have no fraud label: evaluate labelled rows only")
    labels = scores["is_fraud"].astype(bool).to_numpy().astype(np.int64)
    if labels.sum() == 0 or labels.sum() == len(labels):
        raise EvaluationInputError("the labelled rows need both frauds and genuine transactions")
    values = scores["score"].to_numpy(np.float64)
    cut = float(threshold if threshold is not None else scores.attrs.get("threshold", 0.5))
    cards = scores["card_token"].astype(str).to_numpy()
    ts = pd.to_datetime(scores["ts"]).to_numpy("datetime64[s]")
    episode = episodes(cards, ts, labels, episode_gap_hours)

    def figures(rows: np.ndarray) -> dict[str, float]:
        found = headline(labels[rows], values[rows], cut, alert_budget)
        found.update(episode_detection(episode[rows], ts[rows], values[rows] >= cut))
        return {name: found[name] for name in BOOTSTRAPPED}

    point = headline(labels, values, cut, alert_budget)
    detection = episode_detection(episode, ts, values >= cut)
    intervals = bootstrap_by_episode(labels, episode, figures, bootstrap_rounds, seed)
    attrs = scores.attrs
    return EvaluationReport(
        model=str(attrs.get("model", "")),
        version=int(attrs.get("version", 0)),
        source=str(attrs.get("source", "")),
        rows=len(labels),
        frauds=int(labels.sum()),
        threshold=cut,
        alert_budget=alert_budget,
        metrics=point,  # type: ignore[arg-type]
        at_threshold=at_threshold(labels, values, cut),  # type: ignore[arg-type]
        at_budget=at_budget(labels, values, alert_budget),  # type: ignore[arg-type]
        episodes={**detection, "gap_hours": episode_gap_hours},  # type: ignore[dict-item]
        calibration=reliability(labels, values),
        confidence_intervals={k: list(v) for k, v in intervals.items()},
        bootstrap={"rounds": bootstrap_rounds, "level": 0.95, "unit": "fraud episode", "seed": seed},
        reconciliation={k: attrs[k] for k in ("rows_in", "scored", "quarantined") if k in attrs},
    )


def write_report(report: EvaluationReport, scores: pd.DataFrame, out_dir: Path) -> tuple[Path, Path]:
    """`evaluation.json` and `evaluation.html` in `out_dir`; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = scores["is_fraud"].astype(bool).to_numpy().astype(np.int64)
    images = plots(labels, scores["score"].to_numpy(np.float64), report)
    page = out_dir / HTML_FILE
    page.write_text(render_html(report, images), encoding="utf-8")
    return report.write_json(out_dir / JSON_FILE), page


def evaluate_model(
    model: str,
    version: int | None,
    data: str | Path | pd.DataFrame,
    *,
    out_dir: Path | None = None,
    backends: Backends | None = None,
    threshold: float | None = None,
) -> EvaluationReport:
    """Score `data` with the version (None: the champion) and evaluate it; with `out_dir`, write the JSON and
    HTML report there. A file without the `Is Fraud?` column raises `EvaluationInputError` (one line)."""
    from cdp.backends import Backends
    from inference.batch_input import LABEL_HEADER, file_header
    from inference.batch_scoring import score_transactions
    from monitoring.promotion.policy import PromotionPolicy

    b = backends or Backends()
    if isinstance(data, str | Path) and Path(data).is_file() and LABEL_HEADER not in file_header(Path(data)):
        raise EvaluationInputError(NO_LABELS)
    scores = score_transactions(model, version, data, backends=b, reasons="none", threshold=threshold)
    s = b.settings
    report = evaluate_scored(
        scores,
        alert_budget=PromotionPolicy.from_settings(s).alert_budget,
        episode_gap_hours=s.evaluate_episode_gap_hours,
        bootstrap_rounds=s.evaluate_bootstrap_rounds,
    )
    report.data = data_fingerprint(data, scores)
    if out_dir is not None:
        write_report(report, scores, Path(out_dir))
    return report
